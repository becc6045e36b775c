"""Brotli and gzip copies beside each text file of a built site, made once per build.

`policy-site serve` sends them to browsers that accept them (Accept-Encoding),
as Caddy's `file_server { precompressed br gzip }` does in production
(`policy-site publish`, form_service/publish.py, uses this same function): the
site is compressed once at the highest level, never per request.
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path

import brotli

# What compresses well. Images are compressed already; source maps are fetched
# only by a browser's developer tools and would double the build's compression time.
TEXT_SUFFIXES = (".html", ".css", ".js", ".json", ".xml", ".svg", ".txt")
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


@dataclass(frozen=True)
class Compressed:
    files: int
    original_bytes: int
    brotli_bytes: int


def precompress(site_dir: Path) -> Compressed:
    files = original = compressed = 0
    for path in sorted(Path(site_dir).rglob("*")):
        if path.suffix not in TEXT_SUFFIXES or not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        br = brotli.compress(data, quality=11)
        _write_beside(path, ".br", br)
        # mtime=0: the same site gives the same bytes, so a rebuild changes no ETag for
        # nothing. (sitemap.xml.gz, the sitemap to download, is this same gzip.)
        _write_beside(path, ".gz", gzip.compress(data, compresslevel=9, mtime=0))
        files += 1
        original += len(data)
        compressed += len(br)
    return Compressed(files, original, compressed)


def _write_beside(path: Path, suffix: str, data: bytes) -> None:
    target = path.with_name(path.name + suffix)
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.write_bytes(data)
    # The original's times: Last-Modified then says when the content changed.
    stat = path.stat()
    os.utime(temporary, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    temporary.replace(target)
