"""The outbox: e-mails (and webhook calls) written in the same transaction as the change
they report.

DESIGN: a request and the message about it are committed together, so a
crash can lose neither one without the other. A worker claims due messages
with a lease, so that several workers (threads, processes, instances) never
send the same message twice; a lease that runs out (a worker died) makes the
message claimable again. Just before each send the worker starts the message
(`start`): it proves the lease is still its own, renews it for the length of
one send, and counts the try, so a try is counted when it is made (or when a
crash interrupted that very send), never for a whole claimed batch. These
functions run inside the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import case, insert, or_, select, update
from sqlalchemy.orm import Session

from form_service.models import OutboxMessage, Request

if TYPE_CHECKING:
    from form_service.records import RequestRecord

PENDING, SENT, FAILED = "pending", "sent", "failed"
# Kinds whose payload is a secret for the recipient only (a download code): erased once sent.
SECRET_PAYLOADS = ("code",)


def is_webhook(kind: str) -> bool:
    """A call to the helpdesk (the ticket, or a follow-up on it), not an e-mail."""
    return kind == "webhook" or kind.startswith("webhook_")


@dataclass(frozen=True)
class Delivery:
    """A claimed message: everything the worker needs to render and send it."""

    id: int
    kind: str
    message_id: str
    attempts: int  # tries made so far; start() counts the next one
    payload: dict[str, Any] | None
    record: RequestRecord
    # When the current round of tries began: the worker gives up a set time after it.
    trying_since: dt.datetime | None = None


@dataclass(frozen=True)
class MessageState:
    """Where one outbox message stands (for staff and tests)."""

    id: int
    kind: str
    message_id: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    sent_at: dt.datetime | None
    created_at: dt.datetime


def message_id_for(reference: str, kind: str, domain: str, n: int = 1) -> str:
    """RFC 5322 Message-ID derived from the reference: the same on every retry.

    `n` numbers the messages of a kind that a request can have more than once
    (a second extension): <PO-7K3M-9QXD.extend-2@...>.
    """
    suffix = f"-{n}" if n > 1 else ""
    return f"<{reference}.{kind}{suffix}@{domain}>"


class RequestKeys(Protocol):
    """What a message needs of its request: a Request row, or the keys of one just inserted."""

    @property
    def id(self) -> int: ...

    @property
    def reference(self) -> str: ...


def enqueue(
    session: Session,
    request: RequestKeys,
    kind: str,
    *,
    domain: str,
    at: dt.datetime,
    payload: dict[str, Any] | None = None,
    n: int = 1,
) -> None:
    """Queue one message of `request` in the caller's transaction.

    A plain INSERT, not an ORM object: nothing reads the new row back in this
    transaction, and the ORM's unit of work cost more than the row itself.
    """
    session.execute(insert(OutboxMessage.__table__), {
        "request_id": request.id,
        "kind": kind,
        "message_id": message_id_for(request.reference, kind, domain, n),
        "status": PENDING,
        "attempts": 0,
        "next_attempt_at": at,
        "created_at": at,
        "payload": payload,
    })


_VERIFY_LAST = case((OutboxMessage.kind == "verify", 1), else_=0)


def claim(
    session: Session, owner: str, *, limit: int, now: dt.datetime, lease: dt.timedelta
) -> list[tuple[OutboxMessage, Request]]:
    """Lease up to `limit` due messages to `owner`; the caller commits.

    PostgreSQL: FOR UPDATE SKIP LOCKED lets concurrent claimers pass each
    other's rows instead of waiting or taking them twice. SQLite ignores the
    clause; there the caller's BEGIN IMMEDIATE makes claims one at a time.
    """
    ids = session.scalars(
        select(OutboxMessage.id)
        .where(
            OutboxMessage.status == PENDING,
            OutboxMessage.next_attempt_at <= now,
            or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        )
        # Messages about verified requests (tickets, receipts, answers) go before
        # verification e-mails, so that a flood of unconfirmed submissions never
        # delays a real customer's ticket; within each, oldest first.
        .order_by(_VERIFY_LAST, OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not ids:
        return []
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        # Not a try yet: a worker killed before it reached this message has not
        # tried it (start() counts the try when the send begins).
        .values(lease_owner=owner, lease_until=now + lease)
        .execution_options(synchronize_session=False)
    )
    rows = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(ids))
        .order_by(_VERIFY_LAST, OutboxMessage.next_attempt_at, OutboxMessage.id)
        .execution_options(populate_existing=True)
    ).all()
    requests = {
        r.id: r
        for r in session.scalars(
            select(Request).where(Request.id.in_({row.request_id for row in rows}))
        )
    }
    return [(row, requests[row.request_id]) for row in rows]


def leased(session: Session, outbox_id: int, owner: str) -> OutboxMessage | None:
    """The message if `owner` still holds its lease (nobody took it over), else None."""
    row = session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == outbox_id).with_for_update()
    )
    if row is None or row.status != PENDING or row.lease_owner != owner:
        return None
    return row


def start(session: Session, outbox_id: int, owner: str, *, now: dt.datetime,
          lease: dt.timedelta) -> OutboxMessage | None:
    """Begin one try of a message that `owner` holds: renew the lease to last the
    send, and count the try. None (and nothing changed) if the lease was lost: the
    worker must put the message down, another one is sending it."""
    row = leased(session, outbox_id, owner)
    if row is not None:
        begin(row, now=now, lease=lease)
    return row


def begin(row: OutboxMessage, *, now: dt.datetime, lease: dt.timedelta) -> None:
    """start() for a row already proved leased: renew the lease for one send, count the try."""
    row.lease_until = now + lease
    row.attempts += 1


def trying_since(row: OutboxMessage) -> dt.datetime:
    return row.trying_since or row.created_at


def _waiting(now: dt.datetime, webhook: bool) -> list[Any]:
    """Messages that failed a try and wait in back-off: pending, not due, not leased."""
    webhooks = or_(OutboxMessage.kind == "webhook",
                   OutboxMessage.kind.like("webhook\\_%", escape="\\"))
    return [
        OutboxMessage.status == PENDING,
        OutboxMessage.next_attempt_at > now,
        # Set by a failed try, or by the outage a try found (the batch's rest, untried).
        OutboxMessage.last_error.is_not(None),
        or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now),
        webhooks if webhook else ~webhooks,
    ]


def wake_one(session: Session, *, now: dt.datetime, webhook: bool) -> bool:
    """Make the message that has waited longest due now: the probe of whether the
    mail server (or helpdesk) answers again. False if none is waiting."""
    first = session.scalar(
        select(OutboxMessage.id).where(*_waiting(now, webhook))
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id).limit(1)
    )
    if first is None:
        return False
    session.execute(update(OutboxMessage).where(OutboxMessage.id == first)
                    .values(next_attempt_at=now)
                    .execution_options(synchronize_session=False))
    return True


def hurry(session: Session, *, now: dt.datetime, webhook: bool) -> int:
    """The server answers again: every message waiting in back-off is due now."""
    result = session.execute(update(OutboxMessage).where(*_waiting(now, webhook))
                             .values(next_attempt_at=now)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def release(row: OutboxMessage, status: str, *, error: str | None = None) -> None:
    row.status = status
    row.lease_owner = None
    row.lease_until = None
    if error is not None:
        row.last_error = error[:2000]


def state(row: OutboxMessage) -> MessageState:
    return MessageState(
        id=row.id,
        kind=row.kind,
        message_id=row.message_id,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        sent_at=row.sent_at,
        created_at=row.created_at,
    )
