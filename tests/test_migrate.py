"""`policy-site migrate`: the schema is brought up to date once, also by instances racing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from site_tree import ROOT as DEFAULT_ROOT
from sqlalchemy import inspect

from form_service import db


def _migrate(database_url: str, tmp_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "POLICY_DATABASE_URL": database_url,
           "POLICY_VAR_DIR": str(tmp_path / "var")}
    return subprocess.Popen(
        [sys.executable, "-m", "form_service.cli", "--root", str(DEFAULT_ROOT), "migrate"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_migrate_brings_a_new_database_to_the_newest_schema_in_one_line(
    database_url: str, tmp_path: Path
) -> None:
    """The first run migrates and says from what to what; the second finds nothing to do."""
    first = _migrate(database_url, tmp_path)
    out, err = first.communicate(timeout=60)
    assert (first.returncode, err) == (0, "")
    assert out.splitlines() == [f"Migrated the database from schema none to {_head()}."]
    second = _migrate(database_url, tmp_path)
    out, err = second.communicate(timeout=60)
    assert (second.returncode, out) == (0, f"The database is up to date (schema {_head()}).\n")
    engine = db.create(database_url)
    try:
        assert db.revision(engine) == _head()
        assert {"requests", "outbox", "request_events", "event_counts"} <= set(
            inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_instances_migrating_at_the_same_time_take_turns(
    database_url: str, tmp_path: Path
) -> None:
    """Four migrations started together all succeed: exactly one of them changes the schema."""
    runs = [_migrate(database_url, tmp_path) for _ in range(4)]
    results = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], results
    lines = sorted(out.strip() for out, _ in results)
    assert lines.count(f"Migrated the database from schema none to {_head()}.") == 1
    assert lines.count(f"The database is up to date (schema {_head()}).") == 3


def test_a_database_that_cannot_be_opened_is_one_sentence(tmp_path: Path) -> None:
    """An unreachable server is a sentence naming the setting, never the URL's password."""
    run = _migrate("postgresql://policy:hunter2@127.0.0.1:1/policy", tmp_path)
    _out, err = run.communicate(timeout=60)
    assert run.returncode == 1
    assert err.startswith("policy-site migrate: the database in POLICY_DATABASE_URL cannot be")
    assert len(err.strip().splitlines()) == 1
    assert "hunter2" not in err


def _head() -> str:
    """The newest revision among the migration scripts (the file names start with it)."""
    versions = DEFAULT_ROOT / "form_service" / "migrations" / "versions"
    return max(p.name.split("_")[0] for p in versions.glob("0*.py"))
