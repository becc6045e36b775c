"""Policy versions as they are on disk: the working text and the frozen archive.

Layout, per language:
  content/<lang>/index.md           the text of the newest version (editors change this)
  content/<lang>/versions/<id>.md   frozen, byte-for-byte copies of every older version

A version's fingerprint is the SHA-256 of its file's bytes (DESIGN: "the chain of
evidence"), so anyone can recompute it with `sha256sum`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# libyaml's loader when present: front matter of hundreds of versions is parsed per build.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FRONT_MATTER = re.compile(r"\A---\n(.*?\n)---\n", re.DOTALL)
_VERSION_ID = re.compile(r"\A\d+(\.\d+)+\Z")


class VersionError(Exception):
    """Raised when a policy file's front matter cannot be read; names the file and the fix."""

    def __init__(self, path: Path, line: int | None, key: str, **params: Any) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.params = params
        super().__init__(f"{path}: {key} {params}")


@dataclass(frozen=True)
class PolicyText:
    lang: str
    id: str
    effective: dt.date
    summary: str
    material: bool
    path: Path
    sha256: str
    body: str
    meta: dict[str, Any] = field(compare=False)
    is_working_copy: bool = False

    @property
    def key(self) -> tuple[int, ...]:
        return version_key(self.id)


def version_key(version_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version_id.split("."))


def split_front_matter(text: str) -> tuple[str, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return "", text
    return match.group(1), text[match.end() :]


def read_policy_file(path: Path, lang: str, *, is_working_copy: bool = False) -> PolicyText:
    data = path.read_bytes()
    text = data.decode("utf-8")
    raw_meta, body = split_front_matter(text)
    if not raw_meta:
        raise VersionError(path, 1, "check_no_front_matter")
    try:
        meta = yaml.load(raw_meta, Loader=_Loader) or {}  # noqa: S506 -- a safe loader
    except yaml.YAMLError:
        raise VersionError(path, 1, "check_bad_front_matter") from None
    version = meta.get("version")
    if not isinstance(version, str) or not _VERSION_ID.match(version):
        raise VersionError(path, _line_of(raw_meta, "version"), "check_bad_version", value=version)
    effective = meta.get("effective")
    if not isinstance(effective, dt.date):
        raise VersionError(
            path, _line_of(raw_meta, "effective"), "check_bad_effective", value=effective
        )
    summary = meta.get("summary") or ""
    return PolicyText(
        lang=lang,
        id=version,
        effective=effective,
        summary=str(summary).strip(),
        material=bool(meta.get("material", False)),
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        body=body,
        meta=meta,
        is_working_copy=is_working_copy,
    )


def _line_of(raw_meta: str, key: str) -> int:
    for number, line in enumerate(raw_meta.splitlines(), start=2):
        if line.startswith(f"{key}:"):
            return number
    return 1


def archive_path(content_dir: Path, lang: str, version_id: str) -> Path:
    return content_dir / lang / "versions" / f"{version_id}.md"


def archived_files(content_dir: Path, lang: str) -> list[Path]:
    folder = content_dir / lang / "versions"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.md") if _VERSION_ID.match(p.stem))


def load_versions(content_dir: Path, lang: str) -> list[PolicyText]:
    """Every version of one language, oldest first; the working copy is the last."""
    by_id: dict[str, PolicyText] = {}
    for path in archived_files(content_dir, lang):
        text = read_policy_file(path, lang)
        by_id[text.id] = text
    index = content_dir / lang / "index.md"
    if index.is_file():
        working = read_policy_file(index, lang, is_working_copy=True)
        by_id[working.id] = working
    return sorted(by_id.values(), key=lambda t: t.key)


def current_of(texts: list[PolicyText], today: dt.date) -> PolicyText:
    """The latest version whose effective date has come (the first one if none has)."""
    in_force = [t for t in texts if t.effective <= today]
    return in_force[-1] if in_force else texts[0]


def upcoming_of(texts: list[PolicyText], today: dt.date) -> PolicyText | None:
    later = [t for t in texts if t.effective > today]
    return later[0] if later else None


def previous_of(texts: list[PolicyText], text: PolicyText) -> PolicyText | None:
    index = [t.id for t in texts].index(text.id)
    return texts[index - 1] if index > 0 else None
