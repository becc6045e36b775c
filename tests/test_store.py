"""The store: durable, idempotent requests; single-use verification; purge; both databases."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from delivery_support import T0, new_request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from form_service import db
from form_service import store as store_module
from form_service.models import Base, UTCDateTime
from form_service.store import Store


def together(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` in `count` threads released at the same instant."""
    barrier = threading.Barrier(count)

    def run() -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(count) as pool:
        return [f.result() for f in [pool.submit(run) for _ in range(count)]]


def test_migrations_build_the_models_schema(database_url: str) -> None:
    """Migrating twice is harmless and leaves exactly the schema models.py describes."""
    store = Store(database_url)
    store.migrate()
    store.migrate()
    engine = db.create(database_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()
    store.close()


def test_request_survives_a_restart(database_url: str) -> None:
    """A created request and its "verify" message are committed before create_request returns."""
    first = Store(database_url)
    first.migrate()
    record, created = first.create_request(new_request())
    first.close()
    again = Store(database_url)
    assert created and again.get(record.reference) == record
    assert [(m.kind, m.status) for m in again.messages(record.reference)] == [
        ("verify", "pending")
    ]
    assert [e.kind for e in again.events(record.reference)] == ["created"]
    again.close()


def test_record_holds_what_was_submitted(store: Store) -> None:
    """The record keeps every submitted field, aware UTC times, the due date and status."""
    riga = dt.timezone(dt.timedelta(hours=2))
    new = new_request(submitted_at=dt.datetime(2027, 1, 31, 14, 0, tzinfo=riga))
    record, _ = store.create_request(new)
    for name in vars(new):
        assert getattr(record, name) == getattr(new, name)
    assert record.submitted_at.tzinfo == dt.UTC
    assert record.due_at == dt.date(2027, 3, 1)
    assert (record.status, record.verified_at) == ("unverified", None)


def test_naive_times_are_refused(store: Store) -> None:
    """A naive submitted_at is refused rather than silently taken as some local time."""
    with pytest.raises(ValueError, match="timezone-aware"):
        store.create_request(new_request(submitted_at=dt.datetime(2027, 1, 1, 12)))


def test_resubmission_returns_the_first_request(store: Store) -> None:
    """The same submission_id again returns the stored request: no second row or e-mail."""
    new = new_request()
    first, created = store.create_request(new)
    again, created_again = store.create_request(new)
    assert (created, created_again) == (True, False)
    assert again == first
    assert len(store.messages(first.reference)) == 1


def test_concurrent_resubmissions_make_one_request(store: Store) -> None:
    """Eight threads sending one submission at once make one request and one outbox row."""
    new = new_request()
    results = together(8, lambda: store.create_request(new))
    assert sum(created for _, created in results) == 1
    assert len({record.id for record, _ in results}) == 1
    assert len(store.messages(results[0][0].reference)) == 1
    assert sum(store.event_counts().values()) == 1  # one "created" event


def test_reference_collision_is_retried(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new reference that is already taken is replaced by another one."""
    taken, _ = store.create_request(new_request())
    fresh = iter([taken.reference, "PO-2222-3333"])
    monkeypatch.setattr(store_module, "new_reference", lambda: next(fresh))
    record, created = store.create_request(new_request())
    assert created and record.reference == "PO-2222-3333"


def test_get_forgives_typing(store: Store) -> None:
    """get() finds a reference typed in lower case with spaces, and None for unknown ones."""
    record, _ = store.create_request(new_request())
    typed = record.reference.lower().replace("-", " ")
    assert store.get(typed) == record
    assert store.get("PO-0000-0000") is None
    assert store.get("not a reference") is None


def test_verify_is_single_use(store: Store) -> None:
    """The first verify marks the request verified and queues ticket and ack; later ones do not."""
    record, _ = store.create_request(new_request())
    at = T0 + dt.timedelta(minutes=10)
    verified, first = store.verify(record.reference, at)
    again, second = store.verify(record.reference, at + dt.timedelta(hours=1))
    assert (first, second) == (True, False)
    assert (verified.status, verified.verified_at) == ("verified", at)
    assert again == verified
    assert [m.kind for m in store.messages(record.reference)] == ["verify", "ticket", "ack"]
    assert [e.kind for e in store.events(record.reference)] == ["created", "verified"]


def test_concurrent_verifications_queue_one_ticket(store: Store) -> None:
    """Eight simultaneous clicks on the link verify once: one ticket, one ack."""
    record, _ = store.create_request(new_request())
    results = together(8, lambda: store.verify(record.reference, T0))
    assert sorted(first for _, first in results) == [False] * 7 + [True]
    assert [m.kind for m in store.messages(record.reference)] == ["verify", "ticket", "ack"]


def test_verify_unknown_reference(store: Store) -> None:
    """Verifying a reference that does not exist (or was purged) returns None."""
    assert store.verify("PO-0000-0000", T0) is None


def test_purge_keeps_only_counts(store: Store) -> None:
    """Purge deletes stale unverified and expired requests with their rows; counts remain."""
    now = T0 + dt.timedelta(days=400)
    stale, _ = store.create_request(new_request(submitted_at=now - dt.timedelta(days=8)))
    fresh, _ = store.create_request(new_request(submitted_at=now - dt.timedelta(days=6)))
    old, _ = store.create_request(new_request(submitted_at=now - dt.timedelta(days=366)))
    store.verify(old.reference, old.submitted_at + dt.timedelta(hours=1))
    kept, _ = store.create_request(new_request(submitted_at=now - dt.timedelta(days=300)))
    store.verify(kept.reference, kept.submitted_at + dt.timedelta(hours=1))

    result = store.purge(now, dt.timedelta(days=7), dt.timedelta(days=365))

    assert (result.unverified, result.expired) == (1, 1)
    assert store.get(stale.reference) is None and store.get(old.reference) is None
    assert store.get(fresh.reference) and store.get(kept.reference)
    assert store.messages(old.reference) == [] and store.events(old.reference) == []
    counts = store.event_counts()
    assert sum(n for (kind, _), n in counts.items() if kind == "created") == 4
    assert sum(n for (kind, _), n in counts.items() if kind == "verified") == 2
    assert counts[("purged_unverified", now.date())] == 1
    assert counts[("purged_retention", now.date())] == 1
    again = store.purge(now, dt.timedelta(days=7), dt.timedelta(days=365))
    assert (again.unverified, again.expired) == (0, 0)


def test_history_is_append_only(store: Store, database_url: str) -> None:
    """The database itself refuses to rewrite a request's history."""
    store.create_request(new_request())
    engine = db.create(database_url)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE request_events SET kind = 'forged'"))
    engine.dispose()


def test_ping(store: Store) -> None:
    """ping() is True while the database answers and False when it cannot be reached."""
    assert store.ping()
    gone = Store("postgresql://nobody@127.0.0.1:1/none", message_domain="example.lv")
    assert gone.ping() is False
    gone.close()


def test_sqlite_connections_are_configured(tmp_path: Path) -> None:
    """Every SQLite connection has WAL, synchronous=FULL, a busy timeout and foreign keys."""
    engine = db.create(f"sqlite:///{tmp_path / 'a' / 'b' / 'requests.sqlite3'}")
    connections = [engine.connect() for _ in range(3)]  # three distinct pooled connections
    for conn in connections:
        pragmas = [conn.exec_driver_sql(f"PRAGMA {p}").scalar() for p in
                   ("journal_mode", "synchronous", "busy_timeout", "foreign_keys")]
        assert pragmas == ["wal", 2, 5000, 1]
        conn.close()
    engine.dispose()


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///var/x.sqlite3", "sqlite"),
    ],
)
def test_database_urls(given: str, driver: str) -> None:
    """Plain postgresql:// and postgres:// URLs use psycopg 3."""
    assert db.normalise_url(given).drivername == driver


def test_other_integrity_errors_are_not_hidden(store: Store) -> None:
    """A constraint violation other than a duplicate is raised, not retried as a collision."""
    with pytest.raises(IntegrityError):
        store.create_request(new_request(name=None))


def test_upgrade_keeps_existing_requests(database_url: str) -> None:
    """Upgrading a 0001 database keeps every request, message and event; first month = due date."""
    engine = db.create(database_url)
    config = Config()
    config.set_main_option("script_location", db.MIGRATIONS)
    with db.writer(engine).begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    new = new_request()
    row = {**vars(new), "reference": "PO-2222-3333", "verified_at": T0,
           "due_at": dt.date(2027, 1, 4), "status": "verified"}
    times = {"policy_viewed_at", "submitted_at", "verified_at"}
    requests = sa.table("requests", *(sa.column(k, UTCDateTime() if k in times else None)
                                      for k in row))
    with engine.begin() as conn:
        conn.execute(requests.insert().values(row))
        request_id = conn.execute(text("SELECT id FROM requests")).scalar_one()
        outbox_rows = sa.table("outbox", *(sa.column(k) for k in
                                           ("request_id", "kind", "message_id", "status",
                                            "attempts")),
                               sa.column("next_attempt_at", UTCDateTime()),
                               sa.column("created_at", UTCDateTime()))
        conn.execute(outbox_rows.insert().values(
            request_id=request_id, kind="ticket", message_id="<PO-2222-3333.ticket@x>",
            status="pending", attempts=0, next_attempt_at=T0, created_at=T0,
        ))
        events = sa.table("request_events", sa.column("request_id"), sa.column("kind"),
                          sa.column("at", UTCDateTime()))
        conn.execute(events.insert().values(request_id=request_id, kind="verified", at=T0))
    engine.dispose()

    store = Store(database_url)
    store.migrate()
    record = store.get("PO-2222-3333")
    assert record is not None
    assert (record.due_at, record.original_due_at, record.extended_months) == (
        dt.date(2027, 1, 4), dt.date(2027, 1, 4), 0
    )
    assert (record.closed_at, record.close_reason) == (None, None)
    assert [m.kind for m in store.messages("PO-2222-3333")] == ["ticket"]
    assert [e.kind for e in store.events("PO-2222-3333")] == ["verified"]
    store.close()


def test_extend_and_close_write_event_and_message_together(store: Store) -> None:
    """extend and close_request each add one event and one outbox row with the decision."""
    record, _ = store.create_request(new_request())
    with pytest.raises(store_module.NotAllowed, match="not confirmed"):
        store.extend(record.reference, 1, "Busy.", T0)
    store.verify(record.reference, T0)
    at = T0 + dt.timedelta(days=3)
    extended = store.extend(record.reference, 2, " Complex.\r\n", at)
    assert (extended.status, extended.extended_months) == ("extended", 2)
    assert extended.due_at == dt.date(2027, 3, 1)  # 1 March 2027: 3 months after 1 December
    closed = store.close_request(record.reference, "refused", "Unfounded.", at)
    assert (closed.status, closed.closed_at, closed.close_reason) == ("refused", at, "Unfounded.")
    [*_, extend_event, close_event] = store.events(record.reference)
    assert extend_event.kind == "extended" and extend_event.detail is not None
    assert extend_event.detail["reason"] == "Complex."
    assert close_event.kind == "closed" and close_event.detail is not None
    assert close_event.detail["outcome"] == "refused"
    claimed = store.claim_messages("w", limit=10, now=at, lease=dt.timedelta(minutes=5))
    payloads = {d.kind: d.payload for d in claimed}
    assert payloads["extend"] == extend_event.detail
    assert payloads["close"] == close_event.detail
    with pytest.raises(store_module.UnknownRequest):
        store.close_request("PO-0000-0000", "done", "x", at)
    with pytest.raises(ValueError, match="outcome"):
        store.close_request(record.reference, "maybe", "x", at)


def test_concurrent_extensions_never_exceed_two_months(store: Store) -> None:
    """Four staff extending at once by two months: one succeeds, the others are refused."""
    record, _ = store.create_request(new_request())
    store.verify(record.reference, T0)

    def extend() -> str:
        try:
            store.extend(record.reference, 2, "Complex.", T0 + dt.timedelta(days=1))
        except store_module.NotAllowed:
            return "refused"
        return "ok"

    assert sorted(together(4, extend)) == ["ok", "refused", "refused", "refused"]
    assert store.get(record.reference).extended_months == 2  # type: ignore[union-attr]
    assert [m.kind for m in store.messages(record.reference)].count("extend") == 1


def test_database_errors_never_carry_customer_data(store: Store) -> None:
    """A failed write's message names the statement but not its bound values.

    (PostgreSQL's own DETAIL line may still quote a failing row; that is the server's.)
    """
    record, _ = store.create_request(new_request(name="Slepens Vārds"))
    statement = text("INSERT INTO requests (reference, name, email) VALUES (:ref, :name, :email)")
    with store._write() as session, pytest.raises(IntegrityError) as caught:
        session.execute(statement, {"ref": record.reference, "name": "Slepens Vārds",
                                    "email": "slepens@example.lv"})
    message = str(caught.value)
    assert "INSERT INTO requests" in message
    assert "[parameters: " not in message and "parameters hidden" in message


# --- group commit (SQLite): requests that wait for the write lock share one transaction --


def _queued_while_locked(store: Store, news: list[Any]) -> tuple[list[Any], int]:
    """Create `news` in threads while the write lock is held, then let them go.

    Returns each thread's result (or exception) and the number of commits made.
    """
    commits = 0

    def count(_conn: Any) -> None:
        nonlocal commits
        commits += 1

    sa.event.listen(store._engine, "commit", count)  # what the test observes

    def create(new: Any) -> Any:
        try:
            return store.create_request(new)
        except Exception as exc:  # the test compares what each caller got
            return exc

    with ThreadPoolExecutor(len(news)) as pool:
        with store._write_lock:  # holds the queue back, as a busy writer would
            futures = [pool.submit(create, new) for new in news]
            deadline = time.monotonic() + 20
            while len(store._queue) < len(news):
                assert time.monotonic() < deadline, "the requests never queued up"
                threading.Event().wait(0.005)
        results = [f.result(timeout=30) for f in futures]
    sa.event.remove(store._engine, "commit", count)
    return results, commits


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    store = Store(f"sqlite:///{tmp_path / 'group.sqlite3'}")
    store.migrate()
    yield store
    store.close()


def test_waiting_requests_share_one_commit(sqlite_store: Store) -> None:
    """Twenty requests queued behind a writer are stored by one commit, each as sent."""
    news = [new_request(name=f"Klients {i}") for i in range(20)]
    results, commits = _queued_while_locked(sqlite_store, news)
    assert commits == 1
    assert [created for _, created in results] == [True] * 20
    assert len({record.reference for record, _ in results}) == 20
    for new, (record, _) in zip(news, results, strict=True):
        assert sqlite_store.get(record.reference) == record
        assert record.name == new.name
        assert [m.kind for m in sqlite_store.messages(record.reference)] == ["verify"]


def test_a_double_click_inside_one_batch_makes_one_request(sqlite_store: Store) -> None:
    """The same submission twice in one batch: one row, both callers get it."""
    twice = new_request()
    results, commits = _queued_while_locked(sqlite_store, [twice, new_request(), twice])
    assert commits == 1
    first, other, again = results
    assert first[0] == again[0] and sorted([first[1], again[1]]) == [False, True]
    assert other[1] is True
    assert sum(sqlite_store.event_counts().values()) == 2


def test_a_bad_request_fails_alone(sqlite_store: Store) -> None:
    """A request the database refuses fails for its sender only; the rest are stored."""
    news = [new_request(), new_request(name=None), new_request()]
    results, commits = _queued_while_locked(sqlite_store, news)
    assert commits == 1
    assert isinstance(results[1], IntegrityError)
    for record, created in (results[0], results[2]):
        assert created and sqlite_store.get(record.reference) == record
    assert sum(sqlite_store.event_counts().values()) == 2


def test_a_failed_commit_acknowledges_nobody(sqlite_store: Store) -> None:
    """When the batch's commit fails, every caller gets the error and nothing is stored."""

    def fail(_conn: Any) -> None:
        raise OSError("disk full")

    sa.event.listen(sqlite_store._engine, "commit", fail)
    results, _ = _queued_while_locked(sqlite_store, [new_request() for _ in range(5)])
    sa.event.remove(sqlite_store._engine, "commit", fail)
    assert all(isinstance(result, OSError) for result in results)
    assert sqlite_store.event_counts() == {}
    record, created = sqlite_store.create_request(new_request())
    assert created and sqlite_store.get(record.reference) == record
