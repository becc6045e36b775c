"""`policy-site new-version` and `seal`: freezing a version byte for byte."""

from __future__ import annotations

import datetime as dt
import hashlib
import subprocess
from pathlib import Path

import pytest
from site_tree import copy_project, edit, site_of

from site_config.ledger import read_ledger
from site_config.new_version import ReleaseError, new_version, seal
from site_config.versions import load_versions


def test_new_version_freezes_and_bumps(tmp_path: Path) -> None:
    """The archive gets the sealed bytes; the working copy gets the new id, date and a TODO."""
    site = site_of(copy_project(tmp_path))
    before = (site.content_dir / "lv" / "index.md").read_bytes()
    new_version(site, "1.1", dt.date(2026, 12, 31))
    archived = site.content_dir / "lv" / "versions" / "1.0.md"
    assert archived.read_bytes() == before
    assert hashlib.sha256(before).hexdigest() == read_ledger(site.root)["1.0"].sha256["lv"]
    working = load_versions(site.content_dir, "en")[-1]
    assert (working.id, working.effective.isoformat()) == ("1.1", "2026-12-31")
    assert working.summary.startswith("TODO")
    assert working.body == load_versions(site.content_dir, "en")[0].body


def test_new_version_after_editing_takes_the_sealed_text_from_git(tmp_path: Path) -> None:
    """An editor who changed the text first still gets the sealed text archived."""
    site = site_of(copy_project(tmp_path))
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t",
                                                  "commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=tmp_path, check=True)
    original = (site.content_dir / "lv" / "index.md").read_bytes()
    edit(site.content_dir / "lv" / "index.md", "Pasta serveriem.", "Pasta serveriem un kurjeriem.")
    new_version(site, "1.1", dt.date(2026, 12, 31))
    assert (site.content_dir / "lv" / "versions" / "1.0.md").read_bytes() == original
    assert "kurjeriem" in (site.content_dir / "lv" / "index.md").read_text("utf-8")


@pytest.mark.parametrize(
    ("new_id", "effective", "says"),
    [
        ("1.0", dt.date(2026, 12, 31), "later than 1.0"),
        ("1.1", dt.date(2026, 11, 1), "must be after"),
        ("v2", dt.date(2026, 12, 31), "not a version number"),
    ],
)
def test_new_version_refuses_bad_input(tmp_path: Path, new_id: str, effective: dt.date,
                                       says: str) -> None:
    """A non-increasing id or date, or a malformed id, is refused with a reason."""
    site = site_of(copy_project(tmp_path))
    with pytest.raises(ReleaseError, match=says):
        new_version(site, new_id, effective)


def test_seal_refuses_while_problems_remain(tmp_path: Path) -> None:
    """Sealing a version whose summary is missing is refused."""
    site = site_of(copy_project(tmp_path))
    new_version(site, "1.1", dt.date(2026, 12, 31))
    with pytest.raises(ReleaseError):
        seal(site, dt.date(2026, 11, 27))
