"""`policy-site requests backup FILE`: a consistent copy of the SQLite database, while serving.

SQLite's online backup API copies the database as one read transaction sees
it: in WAL mode the service keeps writing meanwhile, and the copy holds
every committed request up to that moment and nothing half-written. The copy
is a single file (journal_mode=DELETE), private (0600) from its creation, and
never overwrites a file. PostgreSQL has its own tool for this: pg_dump.

Restoring (README, "Deploying"): stop the service, copy the file to the
database's path (removing any -wal and -shm beside it), start the service.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from form_service.private import FILE, sqlite_path


class BackupError(Exception):
    """Raised when no backup was made; the message says why in one sentence."""


@dataclass(frozen=True)
class Backup:
    path: Path
    requests: int
    size: int


def backup(database_url: str, target: Path) -> Backup:
    database = sqlite_path(database_url)
    if database is None:
        raise BackupError("the database in POLICY_DATABASE_URL is not a SQLite file; back up "
                          "PostgreSQL with pg_dump (README, \"Deploying\")")
    if not database.is_file():
        raise BackupError(f"there is no database at {database} to back up")
    if os.path.lexists(target):
        raise BackupError(f"{target} already exists; a backup never overwrites a file, "
                          "so name a new one")
    # O_EXCL + O_NOFOLLOW: made here, now, by us, 0600 before a byte of personal data is in it.
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE))
    except OSError as exc:
        raise BackupError(f"cannot create {target}: {exc.strerror}") from None
    try:
        requests = _copy(database, target)
    except sqlite3.Error as exc:
        target.unlink(missing_ok=True)
        raise BackupError(f"the copy failed and nothing was kept: {exc}") from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Backup(target, requests, target.stat().st_size)


def _copy(database: Path, target: Path) -> int:
    # Opened read-write (a WAL database needs its -shm), but nothing is written to it.
    with contextlib.closing(sqlite3.connect(database, timeout=30)) as source, \
            contextlib.closing(sqlite3.connect(target)) as copy:
        # pages=-1: all pages in one step, so the copy is one snapshot; step by step,
        # every write by the service would restart it.
        source.backup(copy, pages=-1)
        # One self-contained file: no -wal beside it to forget when copying it away.
        copy.execute("PRAGMA journal_mode=DELETE")
        if copy.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"the copy in {target} failed SQLite's check; nothing was kept")
        tables = {row[0] for row in copy.execute("SELECT name FROM sqlite_master")}
        count = copy.execute("SELECT count(*) FROM requests").fetchone()[0] \
            if "requests" in tables else 0
    with open(target, "rb") as written:
        os.fsync(written.fileno())
    return int(count)
