"""The ledger: fingerprints of every sealed version, kept in the repository.

A sealed version's text never changes again (DESIGN: "a released text never
changes again"); the editor checks compare the files on disk with this ledger.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    effective: str
    sealed_on: str
    sha256: dict[str, str]


def ledger_path(root: Path) -> Path:
    return root / "site_config" / "ledger.json"


def read_ledger(root: Path) -> dict[str, LedgerEntry]:
    path = ledger_path(root)
    if not path.is_file():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {
        e["id"]: LedgerEntry(e["id"], e["effective"], e["sealed_on"], dict(e["sha256"]))
        for e in raw["versions"]
    }


def write_ledger(root: Path, entries: dict[str, LedgerEntry]) -> None:
    from site_config.versions import version_key

    ordered = sorted(entries.values(), key=lambda e: version_key(e.id))
    raw = {
        "about": "Fingerprints (SHA-256 of the Markdown file) of every sealed policy version. "
        "Written by `policy-site seal`; never edit by hand.",
        "versions": [
            {
                "id": e.id,
                "effective": e.effective,
                "sealed_on": e.sealed_on,
                "sha256": dict(sorted(e.sha256.items())),
            }
            for e in ordered
        ],
    }
    ledger_path(root).write_text(
        json.dumps(raw, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
