"""Helpers for the storage and delivery tests: requests to store, in ones or thousands."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from form_service import db, outbox
from form_service.deadlines import due_date
from form_service.delivery.worker import Worker
from form_service.models import Request
from form_service.records import NewRequest
from form_service.references import new_reference

T0 = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
SHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


def new_request(**changes: Any) -> NewRequest:
    base = NewRequest(
        submission_id=uuid.uuid4().hex,
        request_type="access",
        name="Jānis Bērziņš",
        email="janis@example.lv",
        phone="+371 20000000",
        order_number="A-1042",
        details="Lūdzu, atsūtiet visus manus datus.\nPaldies!",
        language="lv",
        policy_version="1.0",
        policy_sha256=SHA,
        policy_language="lv",
        policy_viewed_at=T0 - dt.timedelta(minutes=3),
        submitted_at=T0,
    )
    return replace(base, **changes)


def bulk_requests(database_url: str, count: int, *, at: dt.datetime = T0) -> list[str]:
    """Store `count` requests, each with a pending "verify" message, in one transaction."""
    engine = db.create(database_url)
    references = []
    try:
        with Session(engine) as session, session.begin():
            rows = []
            for i in range(count):
                fields = vars(new_request(submitted_at=at, email=f"customer{i}@example.lv"))
                row = Request(
                    **fields, reference=new_reference(), verified_at=None,
                    due_at=due_date(at), status="unverified",
                )
                rows.append(row)
            session.add_all(rows)
            session.flush()
            for row in rows:
                outbox.enqueue(session, row, "verify", domain="pulkstenu-outlets.lv", at=at)
                references.append(row.reference)
    finally:
        engine.dispose()
    return references


class Clock:
    """A clock the test moves by hand, so back-off and leases need no sleeping."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def drain(worker: Worker) -> int:
    """Run rounds until nothing is due; return how many messages were handled."""

    async def rounds() -> int:
        total = 0
        while handled := await worker.run_once():
            total += handled
        return total

    return asyncio.run(rounds())
