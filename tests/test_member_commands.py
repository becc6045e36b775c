"""`policy-site staff invite | list | remove`: accounts of the staff console from the CLI."""

from __future__ import annotations

import datetime as dt
import getpass
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from smtp_server import SmtpServer

from form_service.cli import main
from form_service.staff.members import Members
from form_service.store import Store

LINK = re.compile(r"https://privatums\.pulkstenu-outlets\.lv/staff/enrol/[A-Za-z0-9_-]{43}")


@pytest.fixture
def store(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          smtp_server: SmtpServer) -> Iterator[Store]:
    for name, value in {
        "POLICY_DATABASE_URL": database_url,
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_BASE_URL": "https://privatums.pulkstenu-outlets.lv",
        "POLICY_SECRET_KEY": "test-secret-key-for-the-storage-and-delivery-tests",
        "POLICY_MAIL_FROM": "privacy@pulkstenu-outlets.lv",
        "POLICY_SMTP_URL": smtp_server.url,
        "POLICY_STAFF_CONSOLE": "on",
    }.items():
        monkeypatch.setenv(name, value)
    active = Store(database_url)
    active.migrate()
    yield active
    active.close()


def test_invite_prints_and_emails_a_one_time_link(
        store: Store, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    """invite creates the member, prints the link and e-mails it to the bare address."""
    assert main(["staff", "invite", "Anna@Pulkstenu-Outlets.lv", "--name", "Anna Liepa",
                 "--lang", "en"]) == 0
    out = capsys.readouterr().out
    [printed] = LINK.findall(out)
    assert "valid 24 hours" in out and "E-mailed to anna@pulkstenu-outlets.lv." in out
    [mail] = smtp_server.messages
    assert mail.message["To"] == "anna@pulkstenu-outlets.lv"
    assert mail.message["Subject"] == "Your access to the Pulksteņu Outlets staff console"
    body = str(mail.message.get_body().get_content())  # type: ignore[union-attr]
    assert printed in body.replace("=\n", "") and "Hello Anna Liepa" in body
    token = printed.rsplit("/", 1)[1]
    now = dt.datetime.now(dt.UTC)
    assert Members(store).invited(token, now).email == "anna@pulkstenu-outlets.lv"
    [event] = store.register_events()
    assert event.kind == "staff_invited" and event.detail == {
        "member": "anna@pulkstenu-outlets.lv", "by": getpass.getuser(), "via": "cli"}


def test_invite_says_when_the_mail_cannot_go(
        store: Store, smtp_server: SmtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    """If the e-mail is refused, the link is still printed, with what to do."""
    smtp_server.reject("janis@pulkstenu-outlets.lv", 550)
    assert main(["staff", "invite", "janis@pulkstenu-outlets.lv", "--name", "Jānis"]) == 0
    out = capsys.readouterr().out
    assert LINK.search(out) and "give them the link yourself" in out


def test_list_and_remove(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    """list shows members and their passkeys; remove deletes one and says their sessions end."""
    assert main(["staff", "list"]) == 0
    assert "No staff members yet" in capsys.readouterr().out
    main(["staff", "invite", "anna@pulkstenu-outlets.lv", "--name", "Anna Liepa"])
    capsys.readouterr()
    assert main(["staff", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["EMAIL", "NAME", "LANG", "PASSKEYS", "INVITED"]
    assert lines[1].split()[:5] == ["anna@pulkstenu-outlets.lv", "Anna", "Liepa", "lv", "none"]
    assert main(["staff", "remove", "ANNA@pulkstenu-outlets.lv"]) == 0
    assert "sessions have ended" in capsys.readouterr().out
    assert Members(store).list() == []
    assert [e.kind for e in store.register_events()] == ["staff_removed", "staff_invited"]


def test_errors_are_one_sentence(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown member or a bad address is one sentence on stderr and exit status 1."""
    assert main(["staff", "remove", "nobody@pulkstenu-outlets.lv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("policy-site staff remove: there is no staff member") \
        and err.count("\n") == 1
    assert main(["staff", "invite", "not-an-address", "--name", "X"]) == 1
    assert "is not an e-mail address" in capsys.readouterr().err
    assert main(["staff"]) == 1
    assert "invite, list or remove" in capsys.readouterr().err
