"""`policy-site new-version` and `policy-site seal`: the two steps of a release.

new-version freezes the sealed text of the current version into the archive
(byte for byte, so its fingerprint stays the same) and turns the working copy
into the next version. seal records the fingerprints of new versions in the
ledger once their text is final.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

from site_config.checks import run_checks
from site_config.facts import Site
from site_config.ledger import LedgerEntry, read_ledger, write_ledger
from site_config.versions import (
    PolicyText,
    archive_path,
    load_versions,
    read_policy_file,
    split_front_matter,
    version_key,
)

_VERSION_ID = re.compile(r"\A\d+(\.\d+)+\Z")


class ReleaseError(Exception):
    """Raised when a release step cannot be done; the message says why and what to do."""


def _sealed_bytes(site: Site, path: Path, want_sha: str) -> bytes:
    """The sealed bytes of a working copy: the file itself, or its last committed state.

    An editor may change the text first and run new-version afterwards; the
    sealed text is then still in git, and that is what goes into the archive.
    """
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() == want_sha:
        return data
    rel = path.resolve().relative_to(site.root).as_posix()
    try:
        committed = subprocess.run(
            ["git", "show", f"HEAD:{rel}"], cwd=site.root, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        committed = b""
    if hashlib.sha256(committed).hexdigest() == want_sha:
        return committed
    raise ReleaseError(
        f"{rel} no longer holds the sealed text of its version, and git does not have it "
        "either: restore the file from the main branch, then run new-version again."
    )


def _front_matter(version_id: str, effective: dt.date, summary: str, material: bool) -> str:
    summary_line = summary.replace('"', '\\"')
    return (
        f'---\nversion: "{version_id}"\neffective: {effective.isoformat()}\n'
        f'summary: "{summary_line}"\nmaterial: {"true" if material else "false"}\n---\n'
    )


def new_version(site: Site, new_id: str, effective: dt.date) -> list[Path]:
    if not _VERSION_ID.match(new_id):
        raise ReleaseError(f"{new_id!r} is not a version number like 1.1.")
    ledger = read_ledger(site.root)
    written: list[Path] = []
    plans = []
    for lang in site.language_codes:
        versions = load_versions(site.content_dir, lang)
        working = versions[-1]
        if version_key(new_id) <= working.key:
            raise ReleaseError(f"Version {new_id} must be later than {working.id}.")
        if effective <= working.effective:
            raise ReleaseError(
                f"The effective date {effective} must be after {working.effective}, "
                f"when version {working.id} takes effect."
            )
        entry = ledger.get(working.id)
        if entry is None or lang not in entry.sha256:
            raise ReleaseError(
                f"Version {working.id} is not sealed yet, so there is nothing to archive: "
                "keep editing it, or run `policy-site seal` first."
            )
        plans.append((lang, working, _sealed_bytes(site, working.path, entry.sha256[lang])))
    for lang, working, sealed in plans:
        frozen = archive_path(site.content_dir, lang, working.id)
        frozen.parent.mkdir(parents=True, exist_ok=True)
        frozen.write_bytes(sealed)
        _, body = split_front_matter(working.path.read_text("utf-8"))
        header = _front_matter(new_id, effective, "TODO: one sentence on what changed", False)
        working.path.write_text(header + body, encoding="utf-8")
        written += [frozen, working.path]
    return written


def _add_translations(entry: LedgerEntry, texts: dict[str, list[PolicyText]]) -> LedgerEntry | None:
    """A sealed version with the fingerprints of languages added since (a new translation of
    it); the fingerprints already there never change. None when nothing is new."""
    new = {
        lang: text.sha256
        for lang, versions in texts.items()
        for text in versions
        if text.id == entry.id and lang not in entry.sha256
    }
    if not new:
        return None
    return LedgerEntry(entry.id, entry.effective, entry.sealed_on, {**entry.sha256, **new})


def seal(site: Site, today: dt.date) -> list[str]:
    """Record the fingerprints of every version not yet in the ledger, and of every
    translation added to a sealed version."""
    problems = [p for p in run_checks(site, today)
                if p.key not in ("check_not_sealed", "check_translation_not_sealed")]
    if problems:
        raise ReleaseError("Fix the problems `policy-site check` reports before sealing.")
    ledger = read_ledger(site.root)
    texts = {lang: load_versions(site.content_dir, lang) for lang in site.language_codes}
    sealed = []
    for text in texts[site.default_language]:
        if text.id in ledger:
            added = _add_translations(ledger[text.id], texts)
            if added:
                ledger[text.id] = added
                sealed.append(text.id)
            continue
        ledger[text.id] = LedgerEntry(
            id=text.id,
            effective=text.effective.isoformat(),
            sealed_on=today.isoformat(),
            sha256={
                lang: read_policy_file(
                    next(t.path for t in texts[lang] if t.id == text.id), lang
                ).sha256
                for lang in site.language_codes
            },
        )
        sealed.append(text.id)
    if sealed:
        write_ledger(site.root, ledger)
    return sealed
