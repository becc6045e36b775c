"""/healthz: JSON for load balancers and monitoring, counts only, 503 without a database."""

from __future__ import annotations

import contextlib
import datetime as dt
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from delivery_support import T0, new_request
from web_support import client_for, database_path, make_settings, open_form

from form_service.store import Store

LEASE = dt.timedelta(minutes=5)


def test_healthz_on_a_fresh_database_is_ok_with_nothing_waiting(tmp_path: Path) -> None:
    """A new service answers 200 JSON, not cached, with an empty backlog."""
    with client_for(make_settings(tmp_path)) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.headers["cache-control"] == "no-store"
    report = response.json()
    assert report.pop("disk_free_mb") >= 100
    assert report == {
        "status": "ok",
        "database": "ok",
        "disk": "ok",
        "outbox": {"pending": 0, "oldest_pending_age_seconds": None},
        "failed_messages": 0,
        "overdue_requests": 0,
    }


def test_healthz_counts_backlog_failures_and_overdue_requests(
    tmp_path: Path, database_url: str
) -> None:
    """Pending mail with its oldest age, failed messages and overdue requests are counted,
    and nothing in the answer names a customer or a request."""
    store = Store(database_url)
    store.migrate()
    try:
        queued_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
        waiting, _ = store.create_request(new_request(submitted_at=queued_at))
        late, _ = store.create_request(new_request(email="late@example.lv", submitted_at=T0))
        store.verify(late.reference, T0)
        # Deliver late's verify and ack, and give up on its ticket: one failed message.
        for delivery in store.claim_messages("w", limit=10, now=T0 + LEASE, lease=LEASE):
            if delivery.record.reference != late.reference:
                continue
            if delivery.kind == "ticket":
                store.mark_failed(delivery.id, "w", "550 no such mailbox", T0)
            else:
                store.mark_sent(delivery.id, "w", T0)
        settings = make_settings(tmp_path)
        # A day after late's due date; waiting is unverified, so never overdue.
        today = late.due_at + dt.timedelta(days=1)
        with client_for(settings, store=store, today=today) as client:
            response = client.get("/healthz")
    finally:
        store.close()
    assert response.status_code == 200
    report = response.json()
    age = report["outbox"].pop("oldest_pending_age_seconds")
    assert 600 <= age < 700
    if database_url.startswith("sqlite"):
        # SQLite's disk is this machine's: how much is free under its folder.
        assert report.pop("disk_free_mb") >= 100
        assert report.pop("disk") == "ok"
    assert report == {
        "status": "ok",
        "database": "ok",
        "outbox": {"pending": 1},
        "failed_messages": 1,
        "overdue_requests": 1,
    }
    for private in (waiting.reference, late.reference, "example.lv", "Bērziņš"):
        assert private not in response.text


class _DownStore(Store):
    """A store whose database has become unreachable."""

    def ping(self) -> bool:
        return False


class _FailingStore(Store):
    """A store whose driver raises instead of answering."""

    def ping(self) -> bool:
        raise ConnectionError("connection refused")


class _BrokenCountsStore(Store):
    """A store that answers the ping but fails the counting queries."""

    def health(self, today: dt.date) -> object:
        raise ConnectionError("server closed the connection unexpectedly")


@pytest.mark.parametrize("store_class", [_DownStore, _FailingStore, _BrokenCountsStore])
def test_healthz_is_503_when_the_database_does_not_answer(
    tmp_path: Path, store_class: type
) -> None:
    """/healthz answers 503 {"database": "unavailable"} when the store fails or raises."""
    settings = make_settings(tmp_path)
    store = store_class(settings.database_url)
    try:
        with client_for(settings, store=store) as client:
            response = client.get("/healthz")
    finally:
        store.close()
    assert response.status_code == 503
    assert response.json() == {"database": "unavailable"}
    assert response.headers["cache-control"] == "no-store"


def _report(client: Any) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz")
    assert response.headers["cache-control"] == "no-store"
    return response.status_code, response.json()


@contextlib.contextmanager
def _no_file_may_grow(*paths: Path) -> Iterator[None]:
    """A full disk, as far as these files can tell: no file of this process may grow
    past the largest of them (RLIMIT_FSIZE; writes beyond fail with EFBIG, and Python
    ignores the SIGXFSZ that would otherwise kill it). No root needed, nothing mocked:
    SQLite meets a kernel that refuses its writes, as on a full disk."""
    limit = max(path.stat().st_size for path in paths if path.exists())
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_healthz_is_503_when_sqlite_can_no_longer_write(tmp_path: Path) -> None:
    """A full disk: reads still work, every POST fails; /healthz must say 503 "read-only"
    (it said 200 when it only read), and the customer's POST gets the try-again page."""
    settings = make_settings(tmp_path)
    database = database_path(settings)
    with client_for(settings) as client:
        assert _report(client)[0] == 200
        form = open_form(client, "/en/request/")
        with _no_file_may_grow(database, database.with_name(database.name + "-wal")):
            status, report = _report(client)
            answer = client.post("/en/request/", data=form.fields())
        assert (status, report) == (503, {"database": "read-only"})
        assert answer.status_code == 503
        assert "try again" in answer.text
        # Space again: healthy again.
        assert _report(client)[0] == 200


def test_healthz_is_503_when_postgresql_is_read_only(postgres_url: str, tmp_path: Path) -> None:
    """A server that takes no writes (a standby after a failover, here a read-only
    session) answers every read: /healthz's write makes it a 503 all the same."""
    writable = Store(postgres_url)
    writable.migrate()
    writable.close()
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    store = Store(read_only)
    try:
        with client_for(make_settings(tmp_path), store=store) as client:
            assert _report(client) == (503, {"database": "read-only"})
    finally:
        store.close()


def test_healthz_reports_low_disk_as_degraded_not_down(tmp_path: Path) -> None:
    """Below POLICY_MIN_FREE_MB free under the database's folder: 200, "degraded",
    "disk": "low" (requests are still stored; the operator must act before they are not)."""
    free = shutil.disk_usage(tmp_path).free // (1024 * 1024)
    settings = make_settings(tmp_path, POLICY_MIN_FREE_MB=str(free + 1000))
    with client_for(settings) as client:
        status, report = _report(client)
    assert status == 200
    assert report["status"] == "degraded"
    assert report["disk"] == "low"
    assert abs(report["disk_free_mb"] - free) < 1000


def test_healthz_reports_unreachable_redis_as_degraded(tmp_path: Path) -> None:
    """Redis configured but not answering: 200 "degraded", "redis": "unavailable"
    (rate limits fail open: requests are still taken), within about a second."""
    settings = make_settings(tmp_path, POLICY_RATE_LIMIT_STORAGE="redis://127.0.0.1:1")
    with client_for(settings) as client:
        started = time.monotonic()
        status, report = _report(client)
        took = time.monotonic() - started
    assert status == 200
    assert report["status"] == "degraded"
    assert report["redis"] == "unavailable"
    assert took < 3


def test_healthz_says_nothing_of_redis_when_counts_are_in_memory(tmp_path: Path) -> None:
    with client_for(make_settings(tmp_path)) as client:
        assert "redis" not in _report(client)[1]
