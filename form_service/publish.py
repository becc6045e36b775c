"""`policy-site publish DIR`: make a built site ready for the web server in front.

Caddy serves the static site itself (deploy/Caddyfile), so two things the
service did for it are done here, once per build:

- beside every text file, its brotli (.br) and gzip (.gz) copy, which Caddy's
  `file_server { precompressed br gzip }` sends to browsers that accept them:
  compressed once at the highest level, never per request;
- the security headers for the site's pages, as Caddy header lines: the same
  Content-Security-Policy the service sends (Material's inline scripts allowed
  by their SHA-256), nosniff, Referrer-Policy and HSTS.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import brotli

from form_service.settings import Settings
from form_service.web.assets import script_hashes
from form_service.web.security import security_headers

# What compresses well; images and fonts are compressed already.
TEXT_SUFFIXES = (".html", ".css", ".js", ".map", ".json", ".xml", ".svg", ".txt")


@dataclass(frozen=True)
class Published:
    files: int
    original_bytes: int
    brotli_bytes: int


def precompress(site_dir: Path) -> Published:
    files = original = compressed = 0
    for path in sorted(site_dir.rglob("*")):
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        br = brotli.compress(data, quality=11)
        # mtime=0: the same site gives the same bytes, so a rebuild changes no ETag for nothing.
        gz = gzip.compress(data, compresslevel=9, mtime=0)
        _write_beside(path, ".br", br)
        _write_beside(path, ".gz", gz)
        files += 1
        original += len(data)
        compressed += len(br)
    return Published(files, original, compressed)


def _write_beside(path: Path, suffix: str, data: bytes) -> None:
    target = path.with_name(path.name + suffix)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(data)
    # Same times as the original: Caddy's Last-Modified and ETag then match it.
    stat = path.stat()
    os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    temporary.replace(target)


def caddy_headers(site_dir: Path) -> str:
    """The site's security headers as a Caddy `header` block (imported by deploy/Caddyfile)."""
    # Caddy serves only https: HSTS belongs in every answer.
    https = cast(Settings, SimpleNamespace(https=True))
    headers = security_headers(https, script_hashes(site_dir))
    lines = [f'\t{name} "{value}"' for name, value in headers.items()]
    return "# Written by `policy-site publish`; do not edit.\nheader {\n" + \
        "\n".join(lines) + "\n}\n"


def publish(site_dir: Path, headers_file: Path | None) -> Published:
    if not (site_dir / "index.html").is_file():
        raise ValueError(f"{site_dir} holds no built site; run `policy-site build` first")
    result = precompress(site_dir)
    if headers_file is not None:
        temporary = headers_file.with_name(f".{headers_file.name}.tmp")
        temporary.write_text(caddy_headers(site_dir), encoding="utf-8")
        temporary.replace(headers_file)  # Caddy never reads half a file
    return result
