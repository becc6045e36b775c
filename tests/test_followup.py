"""After the form, in the store, on SQLite and PostgreSQL: the status key, withdrawing,
asking and replying, answers with sealed files, download codes and the files' purge."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
from pathlib import Path

import pytest
from delivery_support import T0, new_request
from site_tree import ROOT
from sqlalchemy import text

from form_service import answer_files, db
from form_service.answer_files import (
    CODE_TTL,
    MAX_TRIES,
    AnswerFileError,
    AnswerFiles,
    seal_file,
)
from form_service.delivery.emails import render, webhook_json
from form_service.followup import FollowUp
from form_service.outbox import Delivery
from form_service.records import DONE, WITHDRAWN, NotAllowed, RequestRecord
from form_service.settings import Settings, SettingsError, load_settings
from form_service.store import Store

FILES_KEY = "q6Rz3Yc1S2v9kJ0xWbT4pLmN8aE5uH7dF2gK1sQ0wXo"
CONFIRMED = T0 + dt.timedelta(minutes=5)


@pytest.fixture
def files_settings(tmp_path: Path) -> Settings:
    return load_settings({
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_BASE_URL": "https://privatums.pulkstenu-outlets.lv",
        "POLICY_SECRET_KEY": "test-secret-key-for-the-storage-and-delivery-tests",
        "POLICY_FILES_KEY": FILES_KEY,
    }, root=ROOT)


def _confirmed(store: Store, **changes: object) -> RequestRecord:
    record, _ = store.create_request(new_request(**changes))
    result = store.verify(record.reference, CONFIRMED)
    assert result is not None
    return result[0]


def _kinds(store: Store, reference: str) -> list[str]:
    return [m.kind for m in store.messages(reference)]


def _csv(tmp_path: Path, body: str = "field,value\nname,Jānis\n") -> Path:
    path = tmp_path / "dati.csv"
    path.write_text(body, encoding="utf-8")
    return path


def test_a_status_key_is_made_for_each_request_and_only_it_opens_the_request(
        store: Store) -> None:
    """Each request gets its own random key; the right key finds it, any other does not."""
    one, two = _confirmed(store), _confirmed(store)
    assert one.status_key and two.status_key and one.status_key != two.status_key
    follow = FollowUp(store)
    assert follow.by_status_key(one.reference, one.status_key).reference == one.reference
    assert follow.by_status_key(one.reference, two.status_key) is None
    assert follow.by_status_key("PO-0000-0000", one.status_key) is None


def test_purging_a_request_revokes_its_status_key(store: Store) -> None:
    """Once the retention purge deletes a request, its status link finds nothing."""
    record = _confirmed(store)
    store.purge(T0 + dt.timedelta(days=2000), dt.timedelta(hours=1), dt.timedelta(days=1))
    assert FollowUp(store).by_status_key(record.reference, record.status_key or "") is None


def test_withdrawing_closes_the_request_and_tells_staff_on_the_ticket_thread(
        store: Store) -> None:
    """A withdrawal is recorded, the request is closed as withdrawn, and staff get a message."""
    record = _confirmed(store)
    at = CONFIRMED + dt.timedelta(days=1)
    withdrawn = FollowUp(store).withdraw(record.reference, at)
    assert (withdrawn.status, withdrawn.closed_at) == (WITHDRAWN, at)
    assert "withdrawn" in [e.kind for e in store.events(record.reference)]
    assert _kinds(store, record.reference).count("withdrawn") == 1
    assert FollowUp(store).withdraw(record.reference, at).status == WITHDRAWN  # a second click
    assert _kinds(store, record.reference).count("withdrawn") == 1
    with pytest.raises(NotAllowed):
        store.close_request(record.reference, DONE, "too late", at)


def test_an_unconfirmed_request_cannot_be_withdrawn(store: Store) -> None:
    """Only a confirmed request has a status page to withdraw it from."""
    record, _ = store.create_request(new_request())
    with pytest.raises(NotAllowed):
        FollowUp(store).withdraw(record.reference, CONFIRMED)


def test_a_question_waits_for_one_reply_which_goes_to_staff(store: Store,
                                                             settings: Settings) -> None:
    """Staff ask (an "info" e-mail), the customer replies once, the reply is a follow-up
    threaded under the ticket's Message-ID."""
    record = _confirmed(store)
    follow = FollowUp(store)
    with pytest.raises(NotAllowed):
        follow.reply(record.reference, "unasked", CONFIRMED)
    follow.ask(record.reference, "Which e-mail address is your account under?", CONFIRMED)
    question = follow.open_question(record.reference)
    assert question is not None and "account" in question.text
    follow.reply(record.reference, "  jb@example.lv\r\n", CONFIRMED + dt.timedelta(hours=1))
    assert follow.open_question(record.reference) is None
    with pytest.raises(NotAllowed):
        follow.reply(record.reference, "again", CONFIRMED + dt.timedelta(hours=2))
    kinds = _kinds(store, record.reference)
    assert kinds.count("info") == 1 and kinds.count("reply") == 1
    reply = next(m for m in store.messages(record.reference) if m.kind == "reply")
    payload = _payload(store, reply.message_id)
    mail = render("reply", store.get(record.reference), message_id=reply.message_id,
                  settings=settings, payload=payload).message
    ticket_id = f"<{record.reference}.ticket@pulkstenu-outlets.lv>"
    assert (mail["In-Reply-To"], mail["References"]) == (ticket_id, ticket_id)
    assert "jb@example.lv" in mail.get_body().get_content()
    assert mail["To"].addresses[0].addr_spec == "privacy-team@pulkstenu-outlets.lv"


def test_a_second_question_gets_a_message_id_of_its_own(store: Store) -> None:
    """Two questions are two e-mails with different Message-IDs."""
    record = _confirmed(store)
    follow = FollowUp(store)
    follow.ask(record.reference, "First?", CONFIRMED)
    follow.reply(record.reference, "Yes", CONFIRMED)
    follow.ask(record.reference, "Second?", CONFIRMED)
    ids = [m.message_id for m in store.messages(record.reference) if m.kind == "info"]
    assert len(ids) == 2 and len(set(ids)) == 2


def test_with_a_helpdesk_the_reply_also_goes_to_the_webhook(database_url: str,
                                                            settings: Settings) -> None:
    """A reply is a webhook follow-up too, naming the ticket it follows."""
    store = Store(database_url, webhook=True)
    store.migrate()
    try:
        record = _confirmed(store)
        follow = FollowUp(store)
        follow.ask(record.reference, "Which order?", CONFIRMED)
        follow.reply(record.reference, "A-1042", CONFIRMED)
        message = next(m for m in store.messages(record.reference)
                       if m.kind == "webhook_reply")
        body = webhook_json(Delivery(message.id, message.kind, message.message_id, 1,
                                     _payload(store, message.message_id),
                                     store.get(record.reference)), settings)
        assert body["event"] == "reply" and body["text"] == "A-1042"
        assert body["in_reply_to"] == f"<{record.reference}.ticket@pulkstenu-outlets.lv>"
    finally:
        store.close()


def _payload(store: Store, message_id: str) -> dict:  # type: ignore[type-arg]
    with store.reading() as session:
        value = session.execute(text("SELECT payload FROM outbox WHERE message_id = :m"),
                                {"m": message_id}).scalar_one()
    return value if isinstance(value, dict) else json.loads(value)


def test_an_answer_with_files_closes_the_request_and_mails_no_data(
        store: Store, files_settings: Settings, tmp_path: Path) -> None:
    """Files are sealed (0600, no clear text), the request is done, and the "ready"
    e-mail carries no byte of them."""
    record = _confirmed(store)
    stored = seal_file(files_settings, _csv(tmp_path))
    path = files_settings.answers_dir / stored.stored_as
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(files_settings.answers_dir.stat().st_mode) == 0o700
    assert "Jānis".encode() not in path.read_bytes()
    files = AnswerFiles(store, files_settings)
    done = files.answer(record.reference, "Your data are attached.", [stored],
                        CONFIRMED + dt.timedelta(days=3))
    assert done.status == DONE
    [info] = files.files(record.reference)
    assert info.expires_at == CONFIRMED + dt.timedelta(days=33)
    ready = next(m for m in store.messages(record.reference) if m.kind == "ready")
    mail = render("ready", done, message_id=ready.message_id, settings=files_settings,
                  payload=_payload(store, ready.message_id)).message
    body = mail.get_body().get_content()
    assert "Jānis" not in body and "/request/status/" in body
    assert b"".join(answer_files.stream(files_settings, info)) == _csv(tmp_path).read_bytes()


def test_a_file_of_another_type_or_not_what_it_says_is_refused(
        files_settings: Settings, tmp_path: Path) -> None:
    """Only ZIP, PDF, CSV, JSON and TXT, and a PDF must start like one; nothing is left."""
    exe = tmp_path / "tool.exe"
    exe.write_bytes(b"MZ....")
    fake = tmp_path / "report.pdf"
    fake.write_bytes(b"<html>not a pdf</html>")
    for path in (exe, fake):
        with pytest.raises(AnswerFileError):
            seal_file(files_settings, path)
    assert list(files_settings.answers_dir.iterdir()) == []


def test_files_without_the_key_fail_with_one_sentence_naming_it(tmp_path: Path,
                                                                settings: Settings) -> None:
    """POLICY_FILES_KEY unset: attaching says so in one sentence; a malformed key is refused."""
    with pytest.raises(SettingsError, match=r"^POLICY_FILES_KEY must be set[^.]*\.[^.]*$"):
        seal_file(settings, _csv(tmp_path))
    with pytest.raises(SettingsError, match="POLICY_FILES_KEY"):
        load_settings({"POLICY_VAR_DIR": str(tmp_path), "POLICY_SECRET_KEY": "x" * 8
                       + "abcdefghijklmnopqrstuvwxyz0123456789ABCDEF",
                       "POLICY_FILES_KEY": "too-short"}, root=ROOT)


def _answered(store: Store, settings: Settings, tmp_path: Path) -> RequestRecord:
    record = _confirmed(store)
    AnswerFiles(store, settings).answer(record.reference, "Attached.",
                                        [seal_file(settings, _csv(tmp_path))], CONFIRMED)
    return record


def _code(store: Store, reference: str) -> str:
    code = next(m for m in store.messages(reference) if m.kind == "code" and
                m.status == "pending")
    return str(_payload(store, code.message_id)["code"])


def test_five_wrong_codes_lock_that_code(store: Store, files_settings: Settings,
                                         tmp_path: Path) -> None:
    """The fifth wrong try locks the code: even the right code is then refused."""
    record = _answered(store, files_settings, tmp_path)
    files = AnswerFiles(store, files_settings)
    files.send_code(record.reference, CONFIRMED)
    right = _code(store, record.reference)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    outcomes = [files.enter_code(record.reference, wrong, CONFIRMED).outcome
                for _ in range(MAX_TRIES)]
    assert outcomes == ["wrong"] * (MAX_TRIES - 1) + ["locked"]
    assert files.enter_code(record.reference, right, CONFIRMED).outcome == "locked"
    assert "code_locked" in [e.kind for e in store.events(record.reference)]


def test_a_code_works_ten_minutes_and_a_new_one_replaces_it(
        store: Store, files_settings: Settings, tmp_path: Path) -> None:
    """A code expires after 10 minutes; asking again makes the earlier code useless."""
    record = _answered(store, files_settings, tmp_path)
    files = AnswerFiles(store, files_settings)
    files.send_code(record.reference, CONFIRMED)
    first = _code(store, record.reference)
    late = CONFIRMED + CODE_TTL + dt.timedelta(seconds=1)
    assert files.enter_code(record.reference, first, late).outcome == "expired"
    files.send_code(record.reference, late)
    second = [str(_payload(store, m.message_id)["code"]) for m in store.messages(
        record.reference) if m.kind == "code"][-1]
    if first != second:
        assert files.enter_code(record.reference, first, late).outcome == "wrong"
    accepted = files.enter_code(record.reference, second, late)
    assert accepted.outcome == "accepted"
    assert files.granted(record.reference, accepted.code_id or 0, late)
    assert not files.granted(record.reference, accepted.code_id or 0,
                             late + dt.timedelta(minutes=11))


def test_a_sent_code_is_not_kept(store: Store, files_settings: Settings,
                                 tmp_path: Path) -> None:
    """Only an HMAC of the code stays in the database once its e-mail has gone."""
    record = _answered(store, files_settings, tmp_path)
    AnswerFiles(store, files_settings).send_code(record.reference, CONFIRMED)
    code = _code(store, record.reference)
    [claimed] = [d for d in store.claim_messages("w", limit=10, now=CONFIRMED,
                                                 lease=dt.timedelta(minutes=5))
                 if d.kind == "code"] or [None]
    assert claimed is not None
    assert store.mark_sent(claimed.id, "w", CONFIRMED)
    with store.reading() as session:
        dump = " ".join(str(v) for query in ("SELECT * FROM outbox", "SELECT * FROM download_codes")
                        for row in session.execute(text(query)) for v in row)
    assert code not in dump


def test_no_codes_without_files(store: Store, files_settings: Settings) -> None:
    """A request with no answer files has nothing to send a code for."""
    record = _confirmed(store)
    with pytest.raises(NotAllowed):
        AnswerFiles(store, files_settings).send_code(record.reference, CONFIRMED)


def test_the_purge_deletes_expired_files_from_disk_and_keeps_their_row(
        store: Store, files_settings: Settings, tmp_path: Path) -> None:
    """Past their time the sealed files are gone from disk; the row says when, an event too."""
    record = _answered(store, files_settings, tmp_path)
    [info] = AnswerFiles(store, files_settings).files(record.reference)
    path = files_settings.answers_dir / info.stored_as
    assert store.purge_answer_files(CONFIRMED + dt.timedelta(days=29),
                                    files_settings.answers_dir) == 0
    assert path.is_file()
    later = CONFIRMED + dt.timedelta(days=30, seconds=1)
    assert store.purge_answer_files(later, files_settings.answers_dir) == 1
    assert not path.exists()
    [gone] = AnswerFiles(store, files_settings).files(record.reference)
    assert gone.deleted_at == later and not gone.available(later)
    assert "files_deleted" in [e.kind for e in store.events(record.reference)]
    with pytest.raises(NotAllowed):
        AnswerFiles(store, files_settings).send_code(record.reference, later)


def test_the_purge_removes_sealed_files_no_request_names(
        store: Store, files_settings: Settings, tmp_path: Path) -> None:
    """A sealed file whose request was purged, or whose attach never finished, goes too
    (after a grace period for an attach under way)."""
    record = _answered(store, files_settings, tmp_path)
    [info] = AnswerFiles(store, files_settings).files(record.reference)
    orphan = seal_file(files_settings, _csv(tmp_path))
    old = 1_000_000_000
    for name in (info.stored_as, orphan.stored_as):
        os.utime(files_settings.answers_dir / name, (old, old))
    store.purge(CONFIRMED + dt.timedelta(days=2000), dt.timedelta(hours=1), dt.timedelta(days=1))
    store.purge_answer_files(CONFIRMED + dt.timedelta(days=2000), files_settings.answers_dir)
    assert list(files_settings.answers_dir.iterdir()) == []


def test_the_migration_gives_existing_requests_a_status_key(database_url: str) -> None:
    """Requests stored before revision 0008 get a key of their own when it runs."""
    from alembic import command
    from alembic.config import Config

    engine = db.create(database_url)
    try:
        config = Config()
        config.set_main_option("script_location", db.MIGRATIONS)
        with db.writer(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0005")
        with db.writer(engine).begin() as conn:
            conn.execute(text(
                "INSERT INTO requests (reference, submission_id, request_type, name, email, "
                "details, language, policy_version, policy_sha256, policy_language, "
                "policy_viewed_at, submitted_at, due_at, original_due_at, extended_months, "
                "status) VALUES ('PO-AAAA-BBBB', 's1', 'access', 'n', 'e@x.lv', 'd', 'lv', "
                "'1.0', 'x', 'lv', :t, :t, '2027-01-01', '2027-01-01', 0, 'verified')"),
                {"t": T0})
        db.migrate(engine)
        with engine.connect() as conn:
            key = conn.execute(text("SELECT status_key FROM requests")).scalar_one()
        assert key and len(key) >= 32
    finally:
        engine.dispose()
