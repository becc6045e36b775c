"""Runtime files are private: var/ 0700; database, WAL, secret key and mail 0600; no symlinks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import sqlite3
import stat
import threading
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx2
import pytest
from live_service import HIDDEN, REFERENCE, LiveService
from site_tree import ROOT as DEFAULT_ROOT

from form_service.cli import main
from form_service.delivery.emails import Outgoing
from form_service.delivery.mailer import MaildirMailer
from form_service.private import tighten
from form_service.settings import load_settings
from form_service.store import Store
from site_config.build_site import build_site


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@contextlib.contextmanager
def loose_umask() -> Iterator[None]:
    """The usual umask (022), so that a private mode can only come from our own code."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.slow
def test_serve_keeps_var_database_secret_and_mail_private(tmp_path: Path) -> None:
    """Under umask 022, `policy-site serve` makes var/ 0700 and the SQLite file, its -wal and
    -shm, the generated secret key and every Maildir message 0600."""
    site_dir = build_site(DEFAULT_ROOT, tmp_path / "site")
    var = tmp_path / "var"
    live = LiveService(var, site_dir, None)
    # No key in the environment: the development key is generated into var/.
    del live.env["POLICY_SECRET_KEY"]
    with loose_umask():
        live.start()
    try:
        with httpx2.Client(base_url=live.base_url, timeout=10) as client:
            form = client.get("/en/request/?type=access")
            fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
            fields.update(name="Anna Liepa", email="anna@example.lv", request_type="access",
                          details="Please send my data.")
            answer = client.post("/en/request/", data=fields, follow_redirects=True,
                                 headers={"Origin": live.base_url})
        assert REFERENCE.search(answer.text), answer.text
        new_mail = var / "maildir" / "new"
        for _ in range(100):
            if new_mail.is_dir() and any(new_mail.iterdir()):
                break
            time.sleep(0.1)
        messages = list(new_mail.iterdir())
        assert messages, "the verify e-mail did not reach the Maildir"
        database = var / "requests.sqlite3"
        private_files = [database, Path(f"{database}-wal"), Path(f"{database}-shm"),
                         var / "secret_key", *messages]
        assert {p.name: mode(p) for p in private_files} == {p.name: 0o600 for p in private_files}
        folders = [var, var / "maildir", new_mail, var / "maildir" / "tmp"]
        assert {str(p): mode(p) for p in folders} == {str(p): 0o700 for p in folders}
    finally:
        live.stop()


def test_serve_tightens_what_an_older_version_left_open(tmp_path: Path) -> None:
    """A var/ 0755 with a database, secret and mail readable by all is made private at start,
    and a symlink found there is left alone rather than followed."""
    var = tmp_path / "var"
    with loose_umask():
        (var / "maildir" / "new").mkdir(parents=True)
        (var / "maildir" / "new" / "1.msg").write_text("Subject: old\n\n")
        with contextlib.closing(sqlite3.connect(var / "requests.sqlite3")) as conn:
            conn.execute("CREATE TABLE t (x)")
        (var / "secret_key").write_text(secrets.token_urlsafe(32))
        outside = tmp_path / "someone-elses-file"
        outside.write_text("not ours")
        (var / "requests.sqlite3-wal").symlink_to(outside)
    for path in (var, var / "requests.sqlite3", var / "secret_key"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    tighten(load_settings({"POLICY_VAR_DIR": str(var)}, root=DEFAULT_ROOT))
    assert mode(var) == 0o700
    assert mode(var / "maildir" / "new") == 0o700
    assert mode(var / "requests.sqlite3") == 0o600
    assert mode(var / "secret_key") == 0o600
    assert mode(var / "maildir" / "new" / "1.msg") == 0o600
    assert mode(outside) == 0o644


def test_a_new_sqlite_database_is_private_with_its_wal(tmp_path: Path) -> None:
    """Opening a new SQLite database under umask 022 makes its folder 0700 and it, its -wal
    and its -shm 0600 (SQLite gives the companions the database file's mode)."""
    database = tmp_path / "fresh" / "requests.sqlite3"
    with loose_umask():
        store = Store(f"sqlite:///{database}")
        try:
            store.migrate()
            companions = [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
            assert {p.name: mode(p) for p in companions} == {p.name: 0o600 for p in companions}
        finally:
            store.close()
    assert mode(database.parent) == 0o700


def test_a_generated_secret_key_is_private_from_the_start(tmp_path: Path) -> None:
    """The development key is created 0600 in a 0700 folder, never briefly readable by all."""
    with loose_umask():
        load_settings({"POLICY_VAR_DIR": str(tmp_path / "var")}, root=DEFAULT_ROOT)
    assert mode(tmp_path / "var") == 0o700
    assert mode(tmp_path / "var" / "secret_key") == 0o600


def test_instances_starting_together_agree_on_one_generated_key(tmp_path: Path) -> None:
    """Processes that find no key at the same moment end with one key, all of them."""
    for round_ in range(20):
        var_dir = tmp_path / f"var{round_}"
        start = threading.Barrier(8)
        keys: list[str] = []

        def load(start: threading.Barrier, var_dir: Path, keys: list[str]) -> None:
            start.wait()
            keys.append(load_settings({"POLICY_VAR_DIR": str(var_dir)},
                                      root=DEFAULT_ROOT).secret_key)

        threads = [threading.Thread(target=load, args=(start, var_dir, keys)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(keys) == 8, "a start failed"
        assert set(keys) == {(var_dir / "secret_key").read_text()}
        assert [p.name for p in var_dir.iterdir()] == ["secret_key"]


def test_maildir_messages_are_private_whatever_the_umask(tmp_path: Path) -> None:
    """A message written by the Maildir mailer is 0600 even under umask 022."""
    message = EmailMessage()
    message["Subject"] = "Test"
    message["Message-ID"] = "<PO-AAAA-BBBB.verify@pulkstenu-outlets.lv>"
    message.set_content("Hello")
    outgoing = Outgoing(message=message, sender="privacy@pulkstenu-outlets.lv",
                        recipients=("anna@example.lv",))
    with loose_umask():
        asyncio.run(MaildirMailer(tmp_path / "var" / "maildir").send(outgoing))
    [written] = list((tmp_path / "var" / "maildir" / "new").iterdir())
    assert mode(written) == 0o600
    assert mode(tmp_path / "var") == 0o700


def test_export_refuses_to_write_through_a_symlink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`requests export --output LINK` writes nothing and says why in one sentence."""
    monkeypatch.setenv("POLICY_DATABASE_URL", f"sqlite:///{tmp_path / 'requests.sqlite3'}")
    monkeypatch.setenv("POLICY_VAR_DIR", str(tmp_path / "var"))
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    link = tmp_path / "register.csv"
    link.symlink_to(target)
    code = main(["requests", "export", "--output", str(link)])
    _, err = capsys.readouterr()
    assert code == 1
    assert err == (f"policy-site requests export: {link} is a symbolic link; the register is "
                   "written only to a file named directly.\n")
    assert target.read_text() == "precious\n"
    assert link.is_symlink()
