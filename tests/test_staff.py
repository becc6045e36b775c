"""`policy-site requests`: the staff's commands, run through the CLI against both databases."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import getpass
import io
import json
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from delivery_support import SHA, new_request
from site_tree import ROOT
from smtp_server import Received, SmtpServer
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from form_service import db
from form_service.cli import main
from form_service.deadlines import RIGA, due_date
from form_service.delivery.worker import Worker
from form_service.records import RequestRecord
from form_service.settings import load_settings
from form_service.store import Store


@dataclass
class Staff:
    """The staff's side of one test: the CLI, the store it uses, and its clock."""

    store: Store
    capsys: pytest.CaptureFixture[str]
    now: dt.datetime

    @property
    def today(self) -> dt.date:
        return self.now.astimezone(RIGA).date()

    def run(self, *args: str) -> tuple[int, str, str]:
        code = main(["requests", *args])
        out, err = self.capsys.readouterr()
        return code, out, err

    def request(
        self, days_ago: float = 0, *, verified: bool = True, **changes: Any
    ) -> RequestRecord:
        """A request received `days_ago` days (and 10 minutes) ago, confirmed 5 minutes later."""
        at = self.now - dt.timedelta(days=days_ago, minutes=10)
        record, _ = self.store.create_request(new_request(submitted_at=at, **changes))
        if verified:
            result = self.store.verify(record.reference, at + dt.timedelta(minutes=5))
            assert result is not None
            record = result[0]
        return record

    def get(self, reference: str) -> RequestRecord:
        record = self.store.get(reference)
        assert record is not None
        return record


@pytest.fixture
def staff(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
          capsys: pytest.CaptureFixture[str]) -> Iterator[Staff]:
    for name, value in {
        "POLICY_DATABASE_URL": database_url,
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_BASE_URL": "https://privatums.pulkstenu-outlets.lv",
        "POLICY_SECRET_KEY": "test-secret-key-for-the-storage-and-delivery-tests",
        "POLICY_STAFF_EMAIL": "privacy-team@pulkstenu-outlets.lv",
        "POLICY_MAIL_FROM": "privacy@pulkstenu-outlets.lv",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("POLICY_WEBHOOK_URL", "POLICY_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    store = Store(database_url)
    store.migrate()
    yield Staff(store, capsys, dt.datetime.now(dt.UTC))
    store.close()


def deliver(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> list[Received]:
    """Run the delivery worker (the service's) over the outbox once; return what arrived."""
    monkeypatch.setenv("POLICY_SMTP_URL", smtp_server.url)
    settings = load_settings(root=ROOT)
    store = Store.from_settings(settings)

    async def rounds() -> None:
        worker = Worker(store, settings, owner="w")
        while await worker.run_once():
            pass

    asyncio.run(rounds())
    store.close()
    return list(smtp_server.messages)


def body(mail: Received) -> str:
    part = mail.message.get_body()
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def riga(moment: dt.datetime) -> str:
    return moment.astimezone(RIGA).isoformat(timespec="seconds")


def line_of(out: str, reference: str) -> str:
    [line] = [ln for ln in out.splitlines() if ln.startswith(reference)]
    return line


def one_sentence(err: str) -> None:
    assert err.count("\n") == 1 and err.startswith("policy-site requests")
    assert err.rstrip().endswith(".") and "Traceback" not in err


# -- list -------------------------------------------------------------------


def test_list_shows_every_request_and_filters(staff: Staff) -> None:
    """list prints reference, type, status, submission, due date and language; filters narrow it."""
    open_ = staff.request(1, language="en")
    pending = staff.request(0, verified=False, request_type="erasure")
    done = staff.request(2, request_type="erasure")
    staff.store.close_request(done.reference, "done", "Deleted.", staff.now)

    code, out, _ = staff.run("list")
    assert code == 0
    assert out.splitlines()[0].split() == ["REFERENCE", "TYPE", "STATUS", "SUBMITTED", "DUE",
                                           "LANG"]
    submitted = open_.submitted_at.astimezone(RIGA).strftime("%Y-%m-%d %H:%M")
    assert line_of(out, open_.reference).split() == [
        open_.reference, "access", "verified", *submitted.split(), open_.due_at.isoformat(), "en"
    ]
    assert [ln.split()[0] for ln in out.splitlines()[1:4]] == [
        done.reference, open_.reference, pending.reference
    ]
    assert "3 requests." in out

    def listed(*args: str) -> set[str]:
        code, out, _ = staff.run("list", *args)
        assert code == 0
        return {ln.split()[0] for ln in out.splitlines() if ln.startswith("PO-")}

    assert listed("--status", "open") == {open_.reference}
    assert listed("--status", "closed") == listed("--status", "done") == {done.reference}
    assert listed("--status", "unverified") == {pending.reference}
    assert listed("--type", "erasure") == {pending.reference, done.reference}
    assert listed("--status", "refused") == set()


def test_a_discarded_request_is_not_listed_as_one_to_act_on(staff: Staff) -> None:
    """A request the address's owner disowned ("I did not ask for this") is left out of the
    list and of the overdue ones; only `--status discarded` shows it, for the record."""
    kept = staff.request(40)
    disowned = staff.request(40, verified=False)
    assert staff.store.discard(disowned.reference, staff.now) is not None
    code, out, _ = staff.run("list")
    assert code == 0 and disowned.reference not in out and kept.reference in out
    _, overdue, _ = staff.run("overdue")
    assert disowned.reference not in overdue
    _, out, _ = staff.run("list", "--status", "discarded")
    assert disowned.reference in out


def test_list_refuses_an_unknown_type(staff: Staff) -> None:
    """An unknown --type is one sentence naming the known types, exit status 1."""
    code, _, err = staff.run("list", "--type", "complaint")
    assert code == 1
    one_sentence(err)
    assert "'complaint'" in err and "access, rectification" in err


def test_list_marks_overdue_requests(staff: Staff) -> None:
    """An open request past its due date is marked OVERDUE; a closed or fresh one is not."""
    late = staff.request(40)
    closed = staff.request(40)
    staff.store.close_request(closed.reference, "done", "Sent the data.", staff.now)
    fresh = staff.request(0)
    _, out, _ = staff.run("list")
    assert line_of(out, late.reference).split()[-2:] == ["OVERDUE", "lv"]
    assert "OVERDUE" not in line_of(out, closed.reference)
    assert "OVERDUE" not in line_of(out, fresh.reference)


def test_failed_message_is_visible(staff: Staff, smtp_server: SmtpServer,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A message the mail server refused for good appears, with its reason, in list and show."""
    smtp_server.reject("gone@example.lv", 550)
    bad = staff.request(0, verified=False, email="gone@example.lv")
    good = staff.request(0, verified=False)
    deliver(smtp_server, monkeypatch)

    _, out, _ = staff.run("list")
    failed = out.split("Failed deliveries", 1)[1]
    assert "NOT sent" in failed
    assert line_of(failed, bad.reference).split()[:3] == [bad.reference, "verify", "1"]
    assert "550" in line_of(failed, bad.reference)
    assert good.reference not in failed

    _, out, _ = staff.run("show", bad.reference)
    assert line_of(out.split("Messages:")[1], "verify").split()[:4] == [
        "verify", "failed", "1", "NOT"
    ]
    assert "last error of verify: 550 5.1.1" in out
    assert "mail_failed" in out


# -- show -------------------------------------------------------------------


def test_show_gives_everything_about_a_request(staff: Staff) -> None:
    """show prints the request, its policy evidence, dates, every event and every message."""
    record = staff.request(0, request_type="erasure", language="en", policy_language="en")
    code, out, _ = staff.run("show", record.reference.lower().replace("-", " "))
    assert code == 0
    facts = dict(ln.split(":", 1) for ln in out.split("\nDetails:")[0].splitlines())
    facts = {k: v.strip() for k, v in facts.items()}
    assert facts["Reference"] == record.reference
    assert facts["Request"] == "erasure (GDPR Art. 17): Datu dzēšana"
    assert facts["Status"] == "verified"
    assert (facts["Name"], facts["E-mail"]) == ("Jānis Bērziņš", "janis@example.lv")
    assert facts["Policy version"] == "1.0 (en)"
    assert facts["Policy SHA-256"] == SHA
    assert facts["Policy text"] == "https://privatums.pulkstenu-outlets.lv/en/versions/1.0/"
    assert facts["Policy shown"] == riga(record.policy_viewed_at)
    assert facts["Submitted"] == riga(record.submitted_at)
    assert record.verified_at is not None
    assert facts["Verified"] == riga(record.verified_at)
    assert facts["Due"] == record.due_at.isoformat()
    assert "> Lūdzu, atsūtiet visus manus datus.\n  > Paldies!" in out
    history = out.split("History (append-only):")[1].split("Messages:")[0]
    lines = history.strip().splitlines()[1:]
    # Showing it is itself recorded, naming the OS user who ran the command (Art. 5(2)).
    assert [ln.split()[1] for ln in lines] == ["created", "verified", "viewed"]
    assert lines[-1].split(None, 2)[2] == f"by={getpass.getuser()}, via=cli"
    messages = out.split("Messages:")[1].strip().splitlines()[1:]
    assert [m.split()[:3] for m in messages] == [
        ["verify", "pending", "0"], ["ticket", "pending", "0"], ["ack", "pending", "0"]
    ]
    assert f"<{record.reference}.ticket@pulkstenu-outlets.lv>" in out


def test_show_makes_customer_text_harmless(staff: Staff) -> None:
    """Control characters and bidi overrides a customer typed never reach the terminal."""
    record = staff.request(0, name="Eve\x1b[2J\u202eevil", details="ok\x1b]0;title\x07\nnext")
    _, out, _ = staff.run("show", record.reference)
    assert "\x1b" not in out and "\u202e" not in out and "\x07" not in out
    assert "Eve [2J evil" in out


def test_show_unknown_reference(staff: Staff) -> None:
    """An unknown reference is one plain sentence and exit status 1."""
    code, out, err = staff.run("show", "PO-0000-0000")
    assert (code, out) == (1, "")
    one_sentence(err)
    assert "'PO-0000-0000'" in err


# -- overdue ----------------------------------------------------------------


def test_overdue_and_within(staff: Staff) -> None:
    """overdue lists open requests past due; --within N adds those due in the next N days."""
    late = staff.request(40)
    soon = staff.request(26)
    later = staff.request(0)
    closed = staff.request(40)
    staff.store.close_request(closed.reference, "refused", "Manifestly unfounded.", staff.now)
    staff.request(40, verified=False)

    code, out, _ = staff.run("overdue")
    assert code == 0
    assert f"1 open request overdue on {staff.today.isoformat()}:" in out
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith("PO-")] == [late.reference]

    days = (soon.due_at - staff.today).days
    assert 0 <= days < (later.due_at - staff.today).days
    code, out, _ = staff.run("overdue", "--within", str(days))
    assert code == 0
    assert [ln.split()[0] for ln in out.splitlines() if ln.startswith("PO-")] == [
        late.reference, soon.reference
    ]


def test_nothing_overdue(staff: Staff) -> None:
    """With every answer in time, overdue says so plainly."""
    staff.request(0)
    code, out, _ = staff.run("overdue")
    assert (code, out) == (0, f"No open request is overdue on {staff.today.isoformat()}.\n")


# -- extend -----------------------------------------------------------------


def test_extend_within_the_first_month(staff: Staff, smtp_server: SmtpServer,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two one-month extensions move the due date and each e-mails the customer date and reason."""
    record = staff.request(0, language="en")
    code, out, _ = staff.run("extend", record.reference, "--reason", "We must search the archive.")
    assert code == 0
    extended = staff.get(record.reference)
    assert extended.due_at == due_date(record.submitted_at, 2)
    assert (extended.status, extended.extended_months) == ("extended", 1)
    assert extended.first_month_due == record.due_at
    assert f"now due {extended.due_at.isoformat()}" in out

    code, _, _ = staff.run("extend", record.reference, "--months", "1", "--reason", "Still busy.")
    assert code == 0
    again = staff.get(record.reference)
    assert again.due_at == due_date(record.submitted_at, 3)
    assert again.extended_months == 2

    [first, second] = [e for e in staff.store.events(record.reference) if e.kind == "extended"]
    assert first.detail is not None and second.detail is not None
    assert first.detail["reason"] == "We must search the archive."
    assert second.detail["previous_due_at"] == extended.due_at.isoformat()

    mails = [m for m in deliver(smtp_server, monkeypatch) if ".extend" in m.message_id]
    assert [m.message_id for m in mails] == [
        f"<{record.reference}.extend@pulkstenu-outlets.lv>",
        f"<{record.reference}.extend-2@pulkstenu-outlets.lv>",
    ]
    assert all(m.recipients == ("janis@example.lv",) for m in mails)
    assert "We must search the archive." in body(mails[0])
    due = extended.due_at
    assert mails[0].message["Subject"] == (
        f"Your request {record.reference}: we will answer by {due.day} {due:%B} {due.year}"
    )
    assert "Still busy." in body(mails[1])


def test_extend_refused_after_the_first_month(staff: Staff) -> None:
    """Once the first month has ended, an extension is refused and nothing is recorded."""
    record = staff.request(40)
    code, out, err = staff.run("extend", record.reference, "--reason", "Too late.")
    assert (code, out) == (1, "")
    one_sentence(err)
    assert f"first month ended on {record.due_at.isoformat()}" in err
    assert staff.get(record.reference) == record
    assert [m.kind for m in staff.store.messages(record.reference)] == ["verify", "ticket", "ack"]
    assert [e.kind for e in staff.store.events(record.reference)] == ["created", "verified"]


def test_extend_refused_beyond_two_months(staff: Staff) -> None:
    """Two further months in total is the most Art. 12(3) allows: a third is refused."""
    record = staff.request(0)
    assert staff.run("extend", record.reference, "--months", "2", "--reason", "Complex.")[0] == 0
    code, _, err = staff.run("extend", record.reference, "--reason", "More.")
    assert code == 1
    one_sentence(err)
    assert "at most 2 further months" in err
    assert staff.get(record.reference).due_at == due_date(record.submitted_at, 3)
    with pytest.raises(SystemExit) as exit_:
        staff.run("extend", record.reference, "--months", "3", "--reason", "More.")
    assert exit_.value.code == 1


def test_extend_needs_a_reason(staff: Staff) -> None:
    """No --reason, or a blank one, is refused: the customer must be told the reasons."""
    record = staff.request(0)
    with pytest.raises(SystemExit) as exit_:
        staff.run("extend", record.reference)
    assert exit_.value.code == 1
    one_sentence(staff.capsys.readouterr().err)
    code, _, err = staff.run("extend", record.reference, "--reason", "  \n ")
    assert code == 1
    one_sentence(err)
    assert "reason is required" in err
    assert staff.get(record.reference) == record


# -- close ------------------------------------------------------------------


def test_close_done(staff: Staff, smtp_server: SmtpServer,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    """close --outcome done records the outcome and e-mails the customer what was done."""
    record = staff.request(3, language="en")
    code, out, _ = staff.run("close", record.reference, "--outcome", "done",
                             "--reason", "We sent you a copy of your data.")
    assert code == 0 and "closed as done" in out
    closed = staff.get(record.reference)
    assert (closed.status, closed.close_reason) == ("done", "We sent you a copy of your data.")
    assert closed.closed_at is not None
    [mail] = [m for m in deliver(smtp_server, monkeypatch) if ".close@" in m.message_id]
    assert mail.message["Subject"] == f"Your request {record.reference} has been carried out"
    assert "We sent you a copy of your data." in body(mail)


@pytest.mark.parametrize(
    ("lang", "phrases"),
    [
        ("lv", ["tiesības iesniegt sūdzību", "Datu valsts inspekcija",
                "tiesību aizsardzību tiesā (VDAR 79. pants)", "4. punkts"]),
        ("en", ["right to lodge a complaint", "Data State Inspectorate (Datu valsts inspekcija)",
                "effective judicial remedy", "Art. 12(4)"]),
        ("ru", ["вправе подать жалобу", "Государственная инспекция данных (Datu valsts inspekcija)",
                "эффективной судебной защитой", "статья 12(4)"]),
    ],
)
def test_close_refused_tells_the_right_to_complain(
    staff: Staff, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch,
    lang: str, phrases: list[str],
) -> None:
    """A refusal e-mails the reasons, DVI's contacts, the judicial remedy, reference and dates."""
    record = staff.request(3, language=lang)
    code, out, _ = staff.run("close", record.reference, "--outcome", "refused",
                             "--reason", "Manifestly unfounded: no account matches.")
    assert code == 0 and "Datu valsts inspekcija" in out
    [mail] = [m for m in deliver(smtp_server, monkeypatch) if ".close@" in m.message_id]
    assert mail.recipients == ("janis@example.lv",)
    text = body(mail)
    for fact in (*phrases, "Manifestly unfounded: no account matches.", record.reference,
                 "Elijas iela 17, Rīga, LV-1050", "pasts@dvi.gov.lv", "+371 67223131",
                 "https://www.dvi.gov.lv", str(record.due_at.year)):
        assert fact in text, fact
    assert record.reference in mail.message["Subject"]


def test_close_only_open_requests(staff: Staff) -> None:
    """An unconfirmed or already closed request cannot be closed (or extended) again."""
    pending = staff.request(0, verified=False)
    code, _, err = staff.run("close", pending.reference, "--outcome", "done", "--reason", "x")
    assert code == 1 and "not confirmed yet" in err
    record = staff.request(0)
    assert staff.run("close", record.reference, "--outcome", "refused", "--reason", "No.")[0] == 0
    code, _, err = staff.run("close", record.reference, "--outcome", "done", "--reason", "Yes.")
    assert code == 1 and "already closed as refused" in err
    code, _, err = staff.run("extend", record.reference, "--reason", "Later.")
    assert code == 1 and "already closed" in err
    one_sentence(err)
    assert staff.get(record.reference).status == "refused"


# -- export -----------------------------------------------------------------


def test_export_csv_and_json_parse_back(staff: Staff, tmp_path: Path) -> None:
    """The register, as CSV on stdout or JSON in a file, holds every field and parses back."""
    refused = staff.request(2)
    staff.run("close", refused.reference, "--outcome", "refused", "--reason", "No such account.")
    extended = staff.request(0, name="=HYPERLINK(\"x\")", language="en")
    staff.run("extend", extended.reference, "--reason", "Complex.")
    staff.capsys.readouterr()

    code, out, _ = staff.run("export")
    assert code == 0
    rows = {r["reference"]: r for r in csv.DictReader(io.StringIO(out, newline=""))}
    assert set(rows) == {refused.reference, extended.reference}
    row = rows[refused.reference]
    assert (row["status"], row["outcome"], row["close_reason"]) == (
        "refused", "refused", "No such account."
    )
    assert (row["policy_version"], row["policy_sha256"], row["policy_language"]) == (
        "1.0", SHA, "lv"
    )
    assert row["submitted_at"] == riga(refused.submitted_at)
    assert row["due_at"] == refused.due_at.isoformat()
    assert row["details"] == refused.details
    assert row["phone"] == "'+371 20000000"  # a spreadsheet would run it as a formula
    other = rows[extended.reference]
    assert other["name"] == "'=HYPERLINK(\"x\")"
    assert (other["extended_months"], other["original_due_at"]) == (
        "1", extended.due_at.isoformat()
    )
    assert "Complex." in other["extensions"]

    target = tmp_path / "register.json"
    code, out, _ = staff.run("export", "--format", "json", "--output", str(target))
    assert code == 0 and out == f"Wrote 2 requests to {target}.\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    data = json.loads(target.read_text("utf-8"))
    entries = {e["reference"]: e for e in data["requests"]}
    assert entries[extended.reference]["name"] == "=HYPERLINK(\"x\")"
    assert entries[extended.reference]["extensions"][0]["reason"] == "Complex."
    assert entries[extended.reference]["status"] == "extended"
    assert entries[refused.reference]["outcome"] == "refused"
    assert entries[refused.reference]["policy_url"] == (
        "https://privatums.pulkstenu-outlets.lv/versions/1.0/"
    )
    assert set(entries[refused.reference]) == set(rows[refused.reference])


# -- history ----------------------------------------------------------------


def test_staff_actions_are_append_only_events(staff: Staff, database_url: str) -> None:
    """Every staff action adds an event with its time; the database refuses to rewrite any."""
    record = staff.request(0)
    staff.run("extend", record.reference, "--reason", "Complex.")
    staff.run("close", record.reference, "--outcome", "done", "--reason", "Done.")
    events = staff.store.events(record.reference)
    assert [e.kind for e in events] == ["created", "verified", "extended", "closed"]
    assert all(e.at.tzinfo is not None for e in events)
    assert events[-1].at >= events[-2].at >= record.submitted_at
    engine = db.create(database_url)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE request_events SET detail = NULL WHERE kind = 'closed'"))
    engine.dispose()
    assert staff.store.events(record.reference) == events


def test_cli_actions_name_the_os_user(staff: Staff) -> None:
    """extend and close record the operating-system user who ran them (GDPR Art. 5(2))."""
    record = staff.request(0)
    staff.run("extend", record.reference, "--reason", "Complex.")
    staff.run("close", record.reference, "--outcome", "done", "--reason", "Done.")
    extended, closed = staff.store.events(record.reference)[-2:]
    for event in (extended, closed):
        assert event.detail is not None
        assert (event.detail["by"], event.detail["via"]) == (getpass.getuser(), "cli")


def test_retry_puts_failed_messages_back_in_the_queue(
        staff: Staff, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """retry queues a request's failed message again with its Message-ID; it then goes."""
    smtp_server.reject("gone@example.lv", 550)
    bad = staff.request(0, verified=False, email="gone@example.lv")
    deliver(smtp_server, monkeypatch)
    [failed] = staff.store.messages(bad.reference)
    assert failed.status == "failed"
    code, out, _ = staff.run("retry", bad.reference)
    assert code == 0 and out.startswith(f"1 message of {bad.reference} back in the queue")
    [queued] = staff.store.messages(bad.reference)
    assert (queued.status, queued.attempts, queued.message_id) == (
        "pending", 0, failed.message_id)
    assert staff.store.events(bad.reference)[-1].kind == "mail_retried"
    smtp_server.rejections.clear()
    arrived = deliver(smtp_server, monkeypatch)
    assert [m.message_id for m in arrived] == [failed.message_id]
    assert staff.run("retry", "--failed") == (0, "No failed message to retry.\n", "")


def test_retry_names_a_request_or_says_failed(
        staff: Staff, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """`retry --failed` queues every failed message; a bare `retry` queues nothing and says
    what to add, so that no one resends every failed message by accident."""
    smtp_server.reject("gone@example.lv", 550)
    smtp_server.reject("away@example.lv", 550)
    first = staff.request(0, verified=False, email="gone@example.lv")
    second = staff.request(1, verified=False, email="away@example.lv")
    deliver(smtp_server, monkeypatch)
    with pytest.raises(SystemExit) as exit_:
        staff.run("retry")
    assert exit_.value.code == 1
    err = staff.capsys.readouterr().err
    one_sentence(err)
    assert "REF" in err and "--failed" in err
    assert [m.status for r in (first, second) for m in staff.store.messages(r.reference)] == [
        "failed", "failed"]
    code, out, _ = staff.run("retry", "--failed")
    assert code == 0 and out.startswith("2 messages back in the queue")
    assert [m.status for r in (first, second) for m in staff.store.messages(r.reference)] == [
        "pending", "pending"]


def test_verify_log_says_the_history_is_intact(staff: Staff) -> None:
    """verify-log walks every event and says the chain holds, with the newest hash."""
    record = staff.request(0)
    staff.run("extend", record.reference, "--reason", "Complex.")
    code, out, err = staff.run("verify-log")
    assert code == 0 and err == ""
    assert out.startswith("The history is intact: 3 events, each linked to the one before it;")
    head = staff.store.verify_log()[0].head
    assert out.rstrip().endswith(f"the newest hash is {head}.")


def test_verify_log_names_the_first_broken_link(staff: Staff, database_url: str) -> None:
    """An event edited behind the service's back (trigger dropped) is named, exit status 1."""
    first = staff.request(0)
    second = staff.request(0)
    engine = db.create(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER request_events_no_update ON request_events"
            if conn.dialect.name == "postgresql" else "DROP TRIGGER request_events_no_update")
        [event_id] = conn.execute(text(
            "SELECT e.id FROM request_events e JOIN requests r ON r.id = e.request_id "
            "WHERE r.reference = :ref AND e.kind = 'verified'"), {"ref": second.reference}).one()
        conn.execute(text("UPDATE request_events SET at = :at WHERE id = :id"),
                     {"at": staff.now - dt.timedelta(days=3), "id": event_id})
    engine.dispose()
    code, out, err = staff.run("verify-log")
    assert code == 1 and out == ""
    one_sentence(err)
    assert f"at event {event_id} (verified, " in err
    assert f"request {second.reference})" in err
    assert "changed after it was written" in err and "the 3 events before it are intact" in err
    assert first.reference not in err


# -- the command line itself ------------------------------------------------


@pytest.mark.parametrize("action", ["list", "show", "overdue", "extend", "close", "export",
                                    "retry", "verify-log"])
def test_each_action_has_help(action: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`policy-site requests ACTION --help` describes the action and exits 0."""
    with pytest.raises(SystemExit) as exit_:
        main(["requests", action, "--help"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: policy-site requests {action}")


def test_no_action(capsys: pytest.CaptureFixture[str]) -> None:
    """`policy-site requests` alone names the actions in one sentence, exit status 1."""
    assert main(["requests"]) == 1
    err = capsys.readouterr().err
    one_sentence(err)
    assert ("list, show, overdue, extend, close, ask, answer, export, backup, retry or "
            "verify-log") in err


def test_unreachable_database(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """A database that cannot be reached is one sentence naming the setting, not its value."""
    monkeypatch.setenv("POLICY_DATABASE_URL", "postgresql://nobody:s3cret@127.0.0.1:1/none")
    monkeypatch.setenv("POLICY_VAR_DIR", str(tmp_path))
    assert main(["requests", "list"]) == 1
    err = capsys.readouterr().err
    one_sentence(err)
    assert "POLICY_DATABASE_URL" in err and "s3cret" not in err


_CONTROLS = "\u202e\u2066\u2069\u202a\u0085\u009b\u2028\u2029"


def test_controls_in_stored_text_never_reach_staff(
    staff: Staff, smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request stored before the form refused them (or by any other way in) with bidi
    controls, C1 controls and U+2028/U+2029 in its text: the ticket, the webhook's JSON,
    `requests show` and the export carry none of them, and keep the words."""
    from form_service.delivery.emails import ticket_json

    record = staff.request(name="Eve\u202eabc\u202c Ozola\u2028Bcc: x",
                           details="Pay \u2066DCBA\u2069 to\u009b us\u2029now",
                           phone="+371\u2028 2000", order_number="A\u202e42")
    mails = deliver(smtp_server, monkeypatch)
    ticket = next(m for m in mails if "privacy-team@pulkstenu-outlets.lv" in m.recipients)
    texts = {
        "ticket": body(ticket) + str(ticket.message["Reply-To"]),
        "webhook": json.dumps(ticket_json(record, load_settings()), ensure_ascii=False),
        "show": staff.run("show", record.reference)[1],
        "export": staff.run("export", "--format", "json")[1],
        "csv": staff.run("export")[1],
    }
    for where, shown in texts.items():
        assert not any(c in shown for c in _CONTROLS), where
        assert "Ozola" in shown and "DCBA" in shown, where
