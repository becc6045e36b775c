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

import yaml

from site_config.facts import Site
from site_config.service_layout import Part, split_layout

_INLINE_SCRIPT = re.compile(r"<script(?P<attrs>[^>]*)>(?P<body>.*?)</script>", re.DOTALL | re.I)
_SRC = re.compile(r"\ssrc\s*=", re.I)
_TYPE = re.compile(r"\stype\s*=\s*\"([^\"]*)\"", re.I)
_SCRIPT_TYPES = ("", "text/javascript", "application/javascript", "module")
_BODY_COLOURS = re.compile(r'<body[^>]*?((?:\s+data-md-color-[a-z]+="[^"]*")+)')
_COLOUR_ATTR = re.compile(r'(data-md-color-[a-z]+)="([^"]*)"')


class AssetsError(Exception):
    """Raised when the built site lacks what the form needs; names the missing file."""


@dataclass(frozen=True)
class SiteLook:
    layouts: dict[str, tuple[Part, ...]]  # per language, the layout split at its marks
    script_hashes: tuple[str, ...]
    # For the staff console, which keeps a layout of its own in the site's colours:
    # Material's hashed stylesheets, the <body>'s colour attributes, the site's name.
    stylesheets: tuple[str, ...]
    body_attributes: tuple[tuple[str, str], ...]
    site_names: dict[str, str]


def _stylesheet(site_dir: Path, pattern: str) -> str:
    found = sorted((site_dir / "assets" / "stylesheets").glob(pattern))
    if not found:
        raise AssetsError(
            f"{site_dir / 'assets' / 'stylesheets' / pattern} is missing: run `policy-site build`."
        )
    return "/" + found[0].relative_to(site_dir).as_posix()


def _body_attributes(site_dir: Path) -> tuple[tuple[str, str], ...]:
    index = site_dir / "index.html"
    if not index.is_file():
        raise AssetsError(f"{index} is missing: run `policy-site build`.")
    match = _BODY_COLOURS.search(index.read_text(encoding="utf-8"))
    return tuple(_COLOUR_ATTR.findall(match.group(1))) if match else ()


def _site_names(root: Path) -> dict[str, str]:
    """The site's name per language, as mkdocs.yml gives it to the header of every page."""
    config = yaml.safe_load((root / "mkdocs.yml").read_text(encoding="utf-8"))
    names: dict[str, str] = {}
    for plugin in config.get("plugins", []):
        if isinstance(plugin, dict) and "i18n" in plugin:
            for entry in plugin["i18n"]["languages"]:
                names[entry["locale"]] = entry.get("site_name") or config["site_name"]
    return names


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
    return SiteLook(
        layouts=_layouts(site, site_dir),
        script_hashes=script_hashes(site_dir),
        stylesheets=(
            _stylesheet(site_dir, "main.*.min.css"),
            _stylesheet(site_dir, "palette.*.min.css"),
            "/assets/stylesheets/policy.css",
            "/request/assets/form.css",
        ),
        body_attributes=_body_attributes(site_dir),
        site_names=_site_names(site.root),
    )
