"""The policy texts a change touches, old and new, read from git.

For a pull request's report: each Markdown file under content/<lang>/ that
differs between the base branch (where this branch left it: the merge base)
and the working tree, with both texts.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from site_config.facts import Site


class CompareError(Exception):
    """Raised when git cannot say what changed; the message says why, in one sentence."""


@dataclass(frozen=True)
class ChangedText:
    path: str  # relative to the project, with forward slashes
    old: str | None  # None: the file is new
    new: str | None  # None: the file was removed


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        )
    except FileNotFoundError:
        raise CompareError("git is not installed.") from None
    except subprocess.CalledProcessError as exc:
        reason = (exc.stderr.strip().splitlines() or ["no reason given"])[0]
        raise CompareError(f"git {args[0]} failed: {reason}") from None
    return done.stdout


def _old_text(root: Path, revision: str, rel: str) -> str | None:
    try:
        # "./" makes the path relative to the project, wherever it sits in the repository.
        return _git(root, "show", f"{revision}:./{rel}")
    except CompareError:
        return None


def changed_texts(site: Site, base: str) -> list[ChangedText]:
    """Every policy text that differs from `base` (a branch or commit), sorted by path."""
    try:
        _git(site.root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except CompareError:
        raise CompareError(
            f"git knows no branch or commit {base!r} here (a shallow checkout lacks it: "
            "fetch the whole history)."
        ) from None
    try:
        # Only what this branch changed, not what the base gained since they parted.
        since = _git(site.root, "merge-base", base, "HEAD").strip()
    except CompareError:
        since = base
    folders = [f"content/{lang}" for lang in site.language_codes]
    listed = _git(site.root, "diff", "--name-only", "--relative", since, "--", *folders)
    listed += _git(site.root, "ls-files", "--others", "--exclude-standard", "--", *folders)
    changed = []
    for rel in sorted({line for line in listed.splitlines() if line.endswith(".md")}):
        path = site.root / rel
        new = path.read_text(encoding="utf-8") if path.is_file() else None
        changed.append(ChangedText(rel, _old_text(site.root, since, rel), new))
    return changed
