"""The build's brotli and gzip copies beside each text file."""

from __future__ import annotations

import gzip
from pathlib import Path

import brotli
from web_support import built_site

from site_config.precompress import TEXT_SUFFIXES, precompress


def test_every_text_file_of_the_build_has_both_copies() -> None:
    """`policy-site build` leaves a .br and a .gz beside every page, stylesheet, script,
    feed and manifest, each decompressing to the file itself."""
    site = built_site()
    texts = [p for p in site.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES]
    assert len(texts) > 20
    for path in texts:
        data = path.read_bytes()
        assert brotli.decompress(path.with_name(path.name + ".br").read_bytes()) == data, path
        assert gzip.decompress(path.with_name(path.name + ".gz").read_bytes()) == data, path


def test_images_and_source_maps_are_left_alone(tmp_path: Path) -> None:
    """Only text files are compressed; a PNG or a source map gets no copy."""
    (tmp_path / "a.html").write_text("<p>" + "x" * 1000, encoding="utf-8")
    (tmp_path / "b.png").write_bytes(b"\x89PNG" + bytes(100))
    (tmp_path / "c.js.map").write_text("{}", encoding="utf-8")
    done = precompress(tmp_path)
    assert done.files == 1 and done.brotli_bytes < done.original_bytes
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.html", "a.html.br", "a.html.gz", "b.png", "c.js.map"]
