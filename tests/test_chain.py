"""The history's hash chain (form_service/chain.py) on SQLite and PostgreSQL: every event
linked to the one before it, tampering behind the service's back caught, the purge's
gaps accounted for, and one line under concurrent writers."""

from __future__ import annotations

import datetime as dt
import itertools
import threading

import pytest
from delivery_support import T0, new_request
from sqlalchemy import text

from form_service import chain, db
from form_service.acting import Actor, acting_as
from form_service.store import Store

DAY = dt.timedelta(days=1)


def _engine(url: str):  # type: ignore[no-untyped-def]
    return db.create(url)


def _tamper(url: str, statement: str, **params: object) -> None:
    """Run SQL directly, as someone with database access would, with the trigger dropped."""
    engine = _engine(url)
    try:
        with engine.begin() as conn:
            drop = ("DROP TRIGGER IF EXISTS request_events_no_update ON request_events"
                    if conn.dialect.name == "postgresql"
                    else "DROP TRIGGER IF EXISTS request_events_no_update")
            conn.exec_driver_sql(drop)
            conn.execute(text(statement), params)
    finally:
        engine.dispose()


def _rows(url: str) -> list[tuple[int, int | None, str, str, str]]:
    engine = _engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(
                "SELECT id, request_id, kind, prev_hash, hash FROM request_events ORDER BY id"))]
    finally:
        engine.dispose()


def _history(store: Store, count: int = 3, start: dt.datetime = T0) -> list[str]:
    """`count` confirmed requests, the first extended: a few events each."""
    references = []
    for i in range(count):
        at = start + dt.timedelta(minutes=i)
        record, _ = store.create_request(new_request(submitted_at=at, email=f"c{i}@example.lv"))
        store.verify(record.reference, at + dt.timedelta(seconds=30))
        references.append(record.reference)
    store.extend(references[0], 1, "Daudz datu.", start + dt.timedelta(hours=1))
    return references


def test_every_event_links_to_the_one_before(store: Store, database_url: str) -> None:
    """Each event stores the hash of the event written before it, the first the genesis."""
    _history(store)
    rows = _rows(database_url)
    assert len(rows) == 7  # 3 x (created, verified) + extended
    assert rows[0][3] == chain.GENESIS
    for before, after in itertools.pairwise(rows):
        assert after[3] == before[4]
    assert len({row[4] for row in rows}) == len(rows)
    verdict, reference = store.verify_log()
    assert verdict.intact and verdict.events == 7 and reference is None
    assert verdict.head == rows[-1][4]


def test_an_edited_event_is_caught(store: Store, database_url: str) -> None:
    """An event whose detail is rewritten behind the service's back is named as changed."""
    references = _history(store)
    rows = _rows(database_url)
    extended = next(r for r in rows if r[2] == "extended")
    _tamper(database_url, "UPDATE request_events SET detail = :detail WHERE id = :id",
            detail='{"months": 2}', id=extended[0])
    verdict, reference = store.verify_log()
    assert not verdict.intact
    assert verdict.broken_at is not None and verdict.broken_at.id == extended[0]
    assert "changed" in (verdict.problem or "")
    assert reference == references[0]
    assert verdict.events == rows.index(extended)


def test_an_edited_event_with_its_hash_recomputed_breaks_the_next_link(
        store: Store, database_url: str) -> None:
    """Rewriting an event and its own hash still breaks the link from the event after it."""
    _history(store)
    rows = _rows(database_url)
    victim, after = rows[2], rows[3]
    _tamper(database_url, "UPDATE request_events SET hash = :hash WHERE id = :id",
            hash=chain.link_hash(victim[3], victim[1], "forged", T0, None), id=victim[0])
    verdict, _ = store.verify_log()
    # The forged hash does not match the content either; the first broken link is named.
    assert verdict.broken_at is not None and verdict.broken_at.id in (victim[0], after[0])


def test_a_deleted_event_is_caught(store: Store, database_url: str) -> None:
    """Deleting an event from the middle makes the next event's link point at nothing."""
    references = _history(store)
    rows = _rows(database_url)
    _tamper(database_url, "DELETE FROM request_events WHERE id = :id", id=rows[3][0])
    verdict, reference = store.verify_log()
    assert verdict.broken_at is not None and verdict.broken_at.id == rows[4][0]
    assert "missing" in (verdict.problem or "")
    assert verdict.events == 3
    assert reference in references


def test_deleting_the_newest_events_is_caught(store: Store, database_url: str) -> None:
    """Removing the newest events leaves the chain head naming an event that is not there."""
    _history(store)
    rows = _rows(database_url)
    _tamper(database_url, "DELETE FROM request_events WHERE id >= :id", id=rows[-2][0])
    verdict, _ = store.verify_log()
    assert not verdict.intact and verdict.broken_at is None
    assert "newest events are missing" in (verdict.problem or "")


def test_the_append_only_trigger_still_refuses_updates(store: Store, database_url: str) -> None:
    """The database itself still refuses to rewrite an event (the trigger is kept)."""
    _history(store, 1)
    engine = _engine(database_url)
    try:
        with pytest.raises(Exception, match="append-only"), engine.begin() as conn:
            conn.execute(text("UPDATE request_events SET kind = 'x'"))
    finally:
        engine.dispose()


def test_the_purge_keeps_the_chain_verifiable(store: Store, database_url: str) -> None:
    """Requests purged with their history leave a checkpoint that bridges exactly their gaps."""
    old = _history(store, 2, start=T0 - 400 * DAY)
    new = _history(store, 2, start=T0)
    # Interleave: an old request's event after the new ones (a late delivery report).
    store.add_note(old[1], "Vēlāka piezīme.", T0 + DAY)
    store.add_note(new[0], "Pēdējā piezīme.", T0 + DAY)
    result = store.purge(T0 + 2 * DAY, dt.timedelta(days=7), dt.timedelta(days=365))
    assert result.expired == 2
    assert store.get(old[0]) is None and store.get(new[0]) is not None
    verdict, _ = store.verify_log()
    assert verdict.intact, verdict.problem
    kinds = [row[2] for row in _rows(database_url)]
    assert kinds[-1] == chain.CHECKPOINT
    # A second purge with nothing to delete writes no checkpoint.
    store.purge(T0 + 3 * DAY, dt.timedelta(days=7), dt.timedelta(days=365))
    assert [row[2] for row in _rows(database_url)].count(chain.CHECKPOINT) == 1


def test_the_purge_does_not_cover_a_deletion_of_its_own(store: Store, database_url: str) -> None:
    """After a purge, deleting a surviving request's event is still caught."""
    _history(store, 2, start=T0 - 400 * DAY)
    _history(store, 2, start=T0)
    store.purge(T0 + DAY, dt.timedelta(days=7), dt.timedelta(days=365))
    rows = _rows(database_url)
    survivor = next(r for r in rows if r[2] == "verified")
    _tamper(database_url, "DELETE FROM request_events WHERE id = :id", id=survivor[0])
    verdict, _ = store.verify_log()
    assert verdict.broken_at is not None
    assert verdict.broken_at.id == rows[rows.index(survivor) + 1][0]


def test_purges_one_after_another_chain_their_bridges(store: Store, database_url: str) -> None:
    """Gaps from two purges, one around the other, are both stepped over."""
    first = _history(store, 1, start=T0 - 800 * DAY)
    second = _history(store, 1, start=T0 - 500 * DAY)
    _history(store, 1, start=T0)
    store.purge(T0 - 300 * DAY, dt.timedelta(days=7), dt.timedelta(days=365))
    assert store.get(first[0]) is None and store.get(second[0]) is not None
    store.purge(T0, dt.timedelta(days=7), dt.timedelta(days=365))
    assert store.get(second[0]) is None
    verdict, _ = store.verify_log()
    assert verdict.intact, verdict.problem


def test_events_name_who_acted(store: Store) -> None:
    """An event written while someone acts names them; the worker's events name nobody."""
    [reference] = _history(store, 1)
    with acting_as(Actor("anna@pulkstenu-outlets.lv", "console")):
        store.record_view(reference, T0 + DAY)
        store.add_note(reference, "Zvanīju klientam.", T0 + DAY)
    events = store.events(reference)
    assert [e.kind for e in events][-2:] == ["viewed", "note"]
    assert events[-2].detail == {"by": "anna@pulkstenu-outlets.lv", "via": "console"}
    assert events[-1].detail == {"text": "Zvanīju klientam.", "by": "anna@pulkstenu-outlets.lv",
                                 "via": "console"}
    assert events[0].detail == {"type": "access"}


def test_register_events_have_no_request_and_are_chained(store: Store) -> None:
    """An export of the register is an event of its own in the same chain."""
    _history(store, 1)
    with acting_as(Actor("anna@pulkstenu-outlets.lv", "console")):
        store.register_event("register_exported", T0 + DAY, {"format": "csv", "requests": 1})
    [event] = store.register_events()
    assert event.kind == "register_exported" and event.detail is not None
    assert event.detail["by"] == "anna@pulkstenu-outlets.lv"
    assert store.verify_log()[0].intact


@pytest.mark.slow
def test_concurrent_writers_keep_one_chain(postgres_url: str) -> None:
    """Eight threads writing events at once on PostgreSQL still make one unbroken line."""
    store = Store(postgres_url)
    store.migrate()
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(15):
                at = T0 + dt.timedelta(seconds=n * 100 + i)
                record, _ = store.create_request(
                    new_request(submitted_at=at, email=f"w{n}.{i}@example.lv"))
                store.verify(record.reference, at)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert not errors, errors
        verdict, _ = store.verify_log()
        assert verdict.intact, verdict.problem
        assert verdict.events == 8 * 15 * 2
        prevs = [row[3] for row in _rows(postgres_url)]
        assert len(set(prevs)) == len(prevs), "two events claim the same predecessor"
    finally:
        store.close()


def test_the_migration_chains_the_history_written_before_it(database_url: str) -> None:
    """A database at revision 0003 with history gets that history chained on upgrade."""
    from alembic import command
    from alembic.config import Config

    engine = db.create(database_url)
    config = Config()
    config.set_main_option("script_location", db.MIGRATIONS)
    try:
        with db.writer(engine).begin() as conn:
            config.attributes["connection"] = conn
            command.upgrade(config, "0003")
        with engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO requests (id, reference, submission_id, request_type, name, email, "
                "details, language, policy_version, policy_sha256, policy_language, "
                "policy_viewed_at, submitted_at, due_at, original_due_at, extended_months, "
                "status) VALUES (1, 'PO-AAAA-BBBB', 's1', 'access', 'A', 'a@example.lv', 'd', "
                "'lv', '1.0', :sha, 'lv', :at, :at, '2027-01-04', '2027-01-04', 0, 'verified')"
            ), {"sha": "0" * 64, "at": T0})
            for kind in ("created", "verified"):
                conn.execute(text("INSERT INTO request_events (request_id, kind, at, detail) "
                                  "VALUES (1, :kind, :at, NULL)"), {"kind": kind, "at": T0})
    finally:
        engine.dispose()
    store = Store(database_url)
    try:
        store.migrate()
        verdict, _ = store.verify_log()
        assert verdict.intact and verdict.events == 2
        store.add_note("PO-AAAA-BBBB", "Pēc jaunināšanas.", T0 + DAY)
        assert store.verify_log()[0].events == 3
    finally:
        store.close()
