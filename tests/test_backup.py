"""`policy-site requests backup FILE`: a consistent copy while serving, and its restore."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest
from live_service import HIDDEN, REFERENCE, LiveService
from site_tree import ROOT as DEFAULT_ROOT

from site_config.build_site import build_site


def policy_site(*args: str, database_url: str, var: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLICY_DATABASE_URL": database_url, "POLICY_VAR_DIR": str(var)}
    return subprocess.run(
        [sys.executable, "-m", "form_service.cli", "--root", str(DEFAULT_ROOT), *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def _submit_until(base_url: str, stop: threading.Event, shown: list[str], n: int) -> None:
    with httpx2.Client(base_url=base_url, timeout=10) as client:
        i = 0
        while not stop.is_set():
            i += 1
            form = client.get("/en/request/?type=access")
            fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
            fields.update(name=f"Client {n}-{i}", email=f"b{n}-{i}@example.lv",
                          request_type="access", details="Please send my data.")
            answer = client.post("/en/request/", data=fields, follow_redirects=True,
                                 headers={"Origin": base_url})
            match = REFERENCE.search(answer.text)
            if match:
                shown.append(match[0])


def _restore(backup: Path, var: Path) -> str:
    """The README's restore: the backup becomes the database file, with no -wal or -shm."""
    var.mkdir(mode=0o700)
    database = var / "requests.sqlite3"
    shutil.copyfile(backup, database)
    database.chmod(0o600)
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return f"sqlite:///{database}"


@pytest.mark.slow
def test_a_backup_taken_while_serving_restores_to_the_same_requests(tmp_path: Path) -> None:
    """Backed up mid-stream, the copy holds whole requests (each with its e-mail) that the
    original also lists; backed up after, the restored database lists exactly the same."""
    site_dir = build_site(DEFAULT_ROOT, tmp_path / "site")
    var = tmp_path / "var"
    live = LiveService(var, site_dir, None)
    live.start()
    stop = threading.Event()
    shown: list[str] = []
    clients = [threading.Thread(target=_submit_until, args=(live.base_url, stop, shown, n))
               for n in range(3)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + 30
        while len(shown) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        during = tmp_path / "during.sqlite3"
        made = policy_site("requests", "backup", str(during),
                           database_url=live.database_url, var=var)
        count_at_backup = len(shown)
        time.sleep(0.5)  # the stream goes on after the copy
        stop.set()
        for client in clients:
            client.join(timeout=15)
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith("Backed up ") and made.stdout.endswith(f" to {during}.\n")
        assert stat.S_IMODE(during.stat().st_mode) == 0o600
        assert count_at_backup >= 20 and len(shown) > count_at_backup

        original = policy_site("requests", "list", database_url=live.database_url, var=var)
        restored_during = policy_site("requests", "list",
                                      database_url=_restore(during, tmp_path / "r1"),
                                      var=tmp_path / "r1")
        assert original.returncode == restored_during.returncode == 0
        rows_during = [line for line in restored_during.stdout.splitlines() if "PO-" in line]
        rows_original = set(original.stdout.splitlines())
        assert len(rows_during) >= 20
        assert [row for row in rows_during if row not in rows_original] == []
        with contextlib.closing(sqlite3.connect(during)) as copy:
            orphans = copy.execute(
                "SELECT count(*) FROM requests r WHERE NOT EXISTS "
                "(SELECT 1 FROM outbox o WHERE o.request_id = r.id AND o.kind = 'verify')"
            ).fetchone()[0]
            assert orphans == 0
            assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"

        after = tmp_path / "after.sqlite3"
        assert policy_site("requests", "backup", str(after), database_url=live.database_url,
                           var=var).returncode == 0
    finally:
        stop.set()
        live.stop()
    restored = policy_site("requests", "list", database_url=_restore(after, tmp_path / "r2"),
                           var=tmp_path / "r2")
    assert restored.stdout == original.stdout
    assert len([line for line in restored.stdout.splitlines() if "PO-" in line]) == len(shown)


def test_a_backup_never_overwrites_a_file(tmp_path: Path) -> None:
    """An existing file, or a symlink to one, is left as it was; the refusal is one sentence."""
    database_url = f"sqlite:///{tmp_path / 'var' / 'requests.sqlite3'}"
    assert policy_site("migrate", database_url=database_url, var=tmp_path / "var").returncode == 0
    existing = tmp_path / "backup.sqlite3"
    existing.write_text("yesterday's backup")
    link = tmp_path / "link.sqlite3"
    link.symlink_to(tmp_path / "elsewhere")
    for target in (existing, link):
        run = policy_site("requests", "backup", str(target), database_url=database_url,
                          var=tmp_path / "var")
        assert run.returncode == 1
        assert run.stderr == (f"policy-site requests backup: {target} already exists; a backup "
                              "never overwrites a file, so name a new one.\n")
    assert existing.read_text() == "yesterday's backup"
    assert not (tmp_path / "elsewhere").exists()


def test_backup_of_postgresql_points_to_pg_dump(tmp_path: Path) -> None:
    """With PostgreSQL the command makes nothing and names pg_dump in one sentence."""
    target = tmp_path / "backup.sql"
    run = policy_site("requests", "backup", str(target),
                      database_url="postgresql://policy@127.0.0.1:5432/policy", var=tmp_path)
    assert run.returncode == 1
    assert run.stderr == ("policy-site requests backup: the database in POLICY_DATABASE_URL is "
                          "not a SQLite file; back up PostgreSQL with pg_dump "
                          "(README, \"Deploying\").\n")
    assert not target.exists()
