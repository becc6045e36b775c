"""Copies of the project's site sources in a temporary folder, for tests that change them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

from site_config.facts import Site, load_site

T = TypeVar("T")

# The repository these tests belong to (the tests test their own project,
# wherever the suite is started from).
ROOT = Path(__file__).resolve().parent.parent
# The console script of the environment running the tests: the editable install.
POLICY_SITE = Path(sys.executable).with_name("policy-site")
# The project's languages as mkdocs.yml lists them, the binding one first, and the
# path prefix of each ("/", "/en/", "/ru/"): tests loop over these, never over names.
LANGUAGES = load_site(ROOT).language_codes
PREFIXES = {lang: load_site(ROOT).prefix(lang) for lang in LANGUAGES}


def per_language(values: dict[str, T]) -> dict[str, T]:
    """What a test needs in each language (its words, its expected texts), checked to name
    every configured language: one added to mkdocs.yml fails here until its words are added."""
    assert set(values) == set(LANGUAGES), (
        f"the test has words for {sorted(values)}, the project's languages are {LANGUAGES}")
    return values


def copy_project(dest: Path) -> Path:
    """Copy mkdocs.yml, content/ and site_config/ (no caches) into dest; return dest."""
    shutil.copy2(ROOT / "mkdocs.yml", dest / "mkdocs.yml")
    shutil.copytree(ROOT / "content", dest / "content")
    shutil.copytree(
        ROOT / "site_config", dest / "site_config", ignore=shutil.ignore_patterns("__pycache__")
    )
    return dest


def run_policy_site(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                    program: Path = POLICY_SITE) -> subprocess.CompletedProcess[str]:
    """`policy-site ARGS` as an editor runs it, in `cwd`, with English messages."""
    full_env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "POLICY_EDITOR_LANG": "en",
                **(env or {})}
    full_env.pop("PYTHONPATH", None)
    return subprocess.run([str(program), *args], cwd=cwd, env=full_env, capture_output=True,
                          text=True, timeout=120)


def commit_all(root: Path, message: str, branch: str | None = None) -> None:
    """Commit everything in `root`, first making it a git repository on main if it is not."""
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)

    if not (root / ".git").exists():
        git("init", "--quiet", "--initial-branch", "main")
    if branch:
        git("checkout", "--quiet", "-b", branch)
    git("add", "--all")
    git("-c", "user.name=Test", "-c", "user.email=test@example.lv", "commit", "--quiet",
        "--allow-empty", "-m", message)


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
