"""Copies of the project's site sources in a temporary folder, for tests that change them."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from site_config.facts import Site, load_site

# The repository these tests belong to (the tests test their own project,
# wherever the suite is started from).
ROOT = Path(__file__).resolve().parent.parent


def copy_project(dest: Path) -> Path:
    """Copy mkdocs.yml, content/ and site_config/ (no caches) into dest; return dest."""
    shutil.copy2(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(ROOT / "content", dest / "content")
    shutil.copytree(
        ROOT / "site_config", dest / "site_config", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest


def site_of(root: Path) -> Site:
    load_site.cache_clear()
    return load_site(root)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def release(root: Path, version: str, effective: dt.date,
            changes: dict[str, tuple[str, str, str]], sealed_on: dt.date) -> Site:
    """new-version, edit each language (lang -> (old, new, summary)), and seal."""
    from site_config.new_version import new_version, seal

    site = site_of(root)
    new_version(site, version, effective)
    for lang, (old, new, summary) in changes.items():
        index = site.content_dir / lang / "index.md"
        edit(index, old, new)
        edit(index, 'summary: "TODO: one sentence on what changed"', f"summary: {summary}")
    seal(site, sealed_on)
    return site
