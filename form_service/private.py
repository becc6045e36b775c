"""Runtime files are private to the user that runs the service (GDPR Art. 32).

var/ holds the requests (SQLite), the development secret key and, without
SMTP, every e-mail: the folder is 0700 and the files 0600. Each place that
creates one of them asks for these modes itself (settings, db, mailer);
`policy-site serve` also tightens, at start, what an older version or a
looser umask left behind.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from sqlalchemy.engine import URL, make_url

from form_service.settings import Settings

FOLDER, FILE = 0o700, 0o600
# SQLite's companions of a database file (WAL mode): they hold recent requests too.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def private_folder(path: Path) -> Path:
    """Make `path` (and its missing parents) and leave it 0700."""
    path.mkdir(mode=FOLDER, parents=True, exist_ok=True)
    _restrict(path, FOLDER)
    return path


def sqlite_path(database_url: str | URL) -> Path | None:
    """The file of a SQLite URL; None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    if url.database.startswith("file:"):
        return None
    return Path(url.database)


def tighten(settings: Settings) -> None:
    """Bring what already exists under the settings' paths to the private modes."""
    if settings.var_dir.exists():
        _restrict(settings.var_dir, FOLDER)
    database = sqlite_path(settings.database_url)
    if database is not None:
        for suffix in SQLITE_SUFFIXES:
            _restrict(database.with_name(database.name + suffix), FILE)
    secret = settings.var_dir / "secret_key"
    _restrict(secret, FILE)
    if settings.maildir.is_dir():
        for folder, _, files in os.walk(settings.maildir):
            _restrict(Path(folder), FOLDER)
            for name in files:
                _restrict(Path(folder) / name, FILE)


def _restrict(path: Path, mode: int) -> None:
    try:
        current = path.lstat()
    except FileNotFoundError:
        return
    # Never through a symlink: its target may be anyone's file.
    if not stat.S_ISLNK(current.st_mode) and stat.S_IMODE(current.st_mode) & ~mode:
        path.chmod(mode)
