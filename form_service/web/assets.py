"""What the form borrows from the built policy site, found once at start-up.

The service's pages are pages of the same site: the build writes, per language,
a layout page (site_config/service_layout.py) with Material's header,
navigation and footer exactly as on the policy pages, and the service puts
each page's title, description and content into it. The site's pages carry
small inline scripts; the Content Security Policy allows exactly those by their
SHA-256 (CSP Level 3, "hash-source") instead of 'unsafe-inline'.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from site_config.facts import Site
from site_config.service_layout import Part, split_layout

_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.DOTALL | re.I)
_SRC = re.compile(r"\ssrc\s*=", re.I)
_TYPE = re.compile(r"\stype\s*=\s*\"([^\"]*)\"", re.I)
_SCRIPT_TYPES = ("", "text/javascript", "application/javascript", "module")


class AssetsError(Exception):
    """Raised when the built site lacks what the form needs; names the missing file."""


@dataclass(frozen=True)
class SiteLook:
    layouts: dict[str, tuple[Part, ...]]  # per language, the layout split at its marks
    script_hashes: tuple[str, ...]


def _is_inline_code(attrs: str) -> bool:
    """An inline script the browser runs; data blocks (type="application/json") it never does."""
    kind = _TYPE.search(attrs)
    return not _SRC.search(attrs) and (kind is None or kind[1].lower() in _SCRIPT_TYPES)


def script_hashes(site_dir: Path) -> tuple[str, ...]:
    hashes: set[str] = set()
    for page in site_dir.rglob("*.html"):
        for match in _INLINE_SCRIPT.finditer(page.read_text(encoding="utf-8")):
            if not _is_inline_code(match["attrs"]):
                continue
            digest = hashlib.sha256(match["body"].encode("utf-8")).digest()
            hashes.add("'sha256-" + base64.b64encode(digest).decode("ascii") + "'")
    return tuple(sorted(hashes))


def _layouts(site: Site, site_dir: Path) -> dict[str, tuple[Part, ...]]:
    layouts = {}
    for lang in site.language_codes:
        page = site_dir / site.prefix(lang).lstrip("/") / "request" / "index.html"
        if not page.is_file():
            raise AssetsError(f"{page} is missing: run `policy-site build`.")
        layouts[lang] = tuple(split_layout(page.read_text(encoding="utf-8")))
    return layouts


def load_site_look(site: Site, site_dir: Path) -> SiteLook:
    return SiteLook(layouts=_layouts(site, site_dir), script_hashes=script_hashes(site_dir))
