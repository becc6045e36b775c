"""Build the static site with MkDocs, as `mkdocs build --strict` would (and compress it)."""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

from site_config.build_date import ENV as BUILD_DATE_ENV
from site_config.precompress import precompress


class BuildError(Exception):
    """Raised when MkDocs reports a warning or an error; the message is MkDocs' own."""


def build_site(root: Path, site_dir: Path | None = None, today: dt.date | None = None) -> Path:
    # Material announces its successor on stderr; the message is not for editors.
    os.environ.setdefault("NO_MKDOCS_2_WARNING", "1")
    if today is not None:
        os.environ[BUILD_DATE_ENV] = today.isoformat()
    from mkdocs.commands.build import build
    from mkdocs.config import load_config
    from mkdocs.exceptions import Abort, MkDocsException

    logging.getLogger("mkdocs").setLevel(logging.WARNING)
    out = Path(site_dir) if site_dir else Path(root) / "site"
    try:
        config = load_config(
            config_file=str(Path(root) / "mkdocs.yml"), strict=True, site_dir=str(out)
        )
        build(config)
    except (Abort, MkDocsException) as exc:
        raise BuildError(f"The site could not be built: {exc}") from None
    return out


def build_and_compress(root: Path, site_dir: Path | None = None,
                       today: dt.date | None = None) -> Path:
    """`policy-site build`: the site, then a brotli and a gzip copy beside every text file
    (for `policy-site serve` and Caddy). The compression is a step of its own, after
    MkDocs' build, so bench/site_build.py compares MkDocs builds alone."""
    out = build_site(root, site_dir, today)
    precompress(out)
    return out
