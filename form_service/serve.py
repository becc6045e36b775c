"""`policy-site serve`: the built site (and, later, the form) on one origin."""

from __future__ import annotations

import argparse

from site_config.build_site import build_site


def serve(args: argparse.Namespace) -> int:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.staticfiles import StaticFiles

    site_dir = args.root / "site"
    if not (site_dir / "versions.json").is_file():
        build_site(args.root)
    app = Starlette()
    app.mount("/", StaticFiles(directory=site_dir, html=True))
    uvicorn.run(app, host=args.host, port=args.port)
    return 0
