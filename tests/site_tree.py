"""Copies of the project's site sources in a temporary folder, for tests that change them."""

from __future__ import annotations

import shutil
from pathlib import Path

from site_config.facts import DEFAULT_ROOT, Site, load_site

ROOT = DEFAULT_ROOT


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
