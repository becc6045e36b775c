"""`policy-site serve`: the built site, the form and the delivery worker in one process.

Start-up problems (a missing secret in production, an unbuildable site, a
database that cannot be opened) are one plain sentence and exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys

from form_service.settings import Settings, SettingsError, load_settings


def _fail(message: str) -> int:
    print(f"policy-site serve: {message}", file=sys.stderr)
    return 1


def _check_database(settings: Settings) -> str | None:
    """Open and migrate the database once before serving, so a bad one is a sentence,
    not a traceback from inside the server's start-up."""
    from form_service.store import Store

    try:
        store = Store.from_settings(settings)
        try:
            store.migrate()
        finally:
            store.close()
    except Exception as exc:  # any driver's error: the sentence names the setting
        # The URL may hold a password: name the variable, never its value.
        return (f"the database in POLICY_DATABASE_URL cannot be opened "
                f"({type(exc).__name__}); check the setting and that the server is running.")
    return None


def serve(args: argparse.Namespace) -> int:
    import uvicorn

    from form_service.app import create_app
    from form_service.web.assets import AssetsError
    from form_service.web.logs import log_config
    from form_service.web.slow_clients import deadline_protocol
    from site_config.build_site import build_and_compress

    env = dict(os.environ)
    if not env.get("POLICY_BASE_URL"):
        # Where this server listens is then its public address (the Origin check
        # compares with it exactly): `serve --port 8080` works with no other step.
        host = f"[{args.host}]" if ":" in args.host else args.host
        env["POLICY_BASE_URL"] = f"http://{host}:{args.port}"
    try:
        settings = load_settings(env, root=args.root)
    except SettingsError as exc:
        return _fail(str(exc))
    from form_service.private import tighten

    tighten(settings)
    if not (settings.site_dir / "versions.json").is_file():
        print(f"Building the site into {settings.site_dir} first.")
        build_and_compress(args.root, settings.site_dir)
    problem = _check_database(settings)
    if problem:
        return _fail(problem)
    try:
        app = create_app(settings)
    except (SettingsError, AssetsError) as exc:
        return _fail(str(exc))
    print(f"Serving the policy site and the request form on http://{args.host}:{args.port}/ "
          "— stop with Ctrl+C.")
    # proxy_headers=False: X-Forwarded-For is read by the app itself, and believed
    # only from POLICY_TRUSTED_PROXIES (ratelimit.client_address).
    # The h11 protocol with deadlines for a request's headers and body (slow_clients.py).
    http = deadline_protocol(settings.header_timeout_seconds, settings.body_timeout_seconds)
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False, http=http,
                server_header=False, log_level="info",
                log_config=log_config(settings.log_format))
    return 0
