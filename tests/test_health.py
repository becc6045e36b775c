"""/healthz: JSON for load balancers and monitoring, counts only, 503 without a database."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from delivery_support import T0, new_request
from web_support import client_for, make_settings

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
