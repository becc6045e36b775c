"""After the form: the customer follows a confirmed request, withdraws it or answers a
question staff asked; staff ask for information.

Kept beside the store (its engine and write queue: store.writing), like
staff/members.py. Every change writes its event (the hash-chained history,
store.append_event) and its messages (outbox) in one transaction, as the
store's own changes do. The question and the reply are events, so they are
purged with the request and cannot be rewritten.
"""

from __future__ import annotations

import datetime as dt
import hmac
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from form_service import outbox
from form_service.customer.forms import MAX_LENGTH
from form_service.models import OutboxMessage, Request, RequestEvent
from form_service.records import OPEN, WITHDRAWN, NotAllowed, RequestRecord
from form_service.references import normalise_reference
from form_service.store import Store, _reason, _require_open, append_event, to_record
from form_service.text import plain_text

# The reply box takes what the form's details field takes.
MAX_REPLY = MAX_LENGTH["details"]


@dataclass(frozen=True)
class Question:
    text: str
    asked_at: dt.datetime


class FollowUp:
    def __init__(self, store: Store) -> None:
        self._store = store

    def by_status_key(self, reference: str, key: str) -> RequestRecord | None:
        """The request a status link names, if the link's key is the request's own.

        The key is random per request (store._insert_rows); a purged request has none,
        so its links stop working (the revocation the status link needs).
        """
        canonical = normalise_reference(reference)
        if canonical is None:
            return None
        with self._store.reading() as session:
            row = session.scalar(select(Request).where(Request.reference == canonical))
            if row is None or not row.status_key:
                return None
            if not hmac.compare_digest(row.status_key.encode(), key.encode()):
                return None
            return to_record(row)

    def open_question(self, reference: str) -> Question | None:
        """The newest question staff asked, if the customer has not answered it yet."""
        with self._store.reading() as session:
            return _open_question(session, reference)

    def withdraw(self, reference: str, at: dt.datetime) -> RequestRecord:
        """The customer withdraws a confirmed, unanswered request; staff are told."""
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            if row.status == WITHDRAWN:
                return to_record(row)  # a second click: already done
            _require_open(row)
            row.status = WITHDRAWN
            row.closed_at = at
            append_event(session, row, "withdrawn", at, {"by": "customer"})
            self._enqueue_staff(session, row, "withdrawn", at, {"at": at.isoformat()})
            return to_record(row)

    def ask(self, reference: str, question: str, at: dt.datetime) -> RequestRecord:
        """Staff ask the customer for information (GDPR Art. 12(6): to confirm their
        identity; Art. 12(2), recital 63: to say which data or processing they mean)."""
        question = _reason(question, "asking for information")
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            _require_open(row)
            append_event(session, row, "info_requested", at, {"question": question})
            outbox.enqueue(session, row, "info", domain=self._store.message_domain, at=at,
                           payload={"question": question}, n=_next(session, row, "info"))
            return to_record(row)

    def reply(self, reference: str, text: str, at: dt.datetime) -> RequestRecord:
        """The customer's answer to the open question; staff get it on the ticket's thread."""
        text = plain_text(text.replace("\r\n", "\n")).strip()[:MAX_REPLY]
        if not text:
            raise ValueError("a reply needs some text")
        with self._store.writing() as session:
            row = self._store.lock_request(session, reference)
            if row.status not in OPEN:
                raise NotAllowed(f"{row.reference} is no longer open")
            question = _open_question(session, row.reference)
            if question is None:
                raise NotAllowed(f"{row.reference} has no question waiting for a reply")
            append_event(session, row, "info_replied", at, {"text": text})
            self._enqueue_staff(session, row, "reply", at,
                                {"question": question.text, "text": text,
                                 "asked_at": question.asked_at.isoformat()})
            return to_record(row)

    def _enqueue_staff(self, session: Session, row: Request, kind: str, at: dt.datetime,
                       payload: dict[str, str]) -> None:
        """A follow-up to staff: an e-mail on the ticket's thread and, with a helpdesk,
        a webhook call naming the ticket it follows."""
        domain = self._store.message_domain
        kinds = (kind, f"webhook_{kind}") if self._store.webhook_on else (kind,)
        for each in kinds:
            outbox.enqueue(session, row, each, domain=domain, at=at, payload=payload,
                           n=_next(session, row, each))


def _next(session: Session, row: Request, kind: str) -> int:
    """The number of this message among the request's messages of its kind (Message-IDs)."""
    earlier = session.scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.request_id == row.id, OutboxMessage.kind == kind))
    return int(earlier or 0) + 1


def _open_question(session: Session, reference: str) -> Question | None:
    canonical = normalise_reference(reference)
    if canonical is None:
        return None
    last = session.execute(
        select(RequestEvent.kind, RequestEvent.at, RequestEvent.detail)
        .join(Request, Request.id == RequestEvent.request_id)
        .where(Request.reference == canonical,
               RequestEvent.kind.in_(("info_requested", "info_replied")))
        .order_by(RequestEvent.id.desc()).limit(1)
    ).first()
    if last is None or last.kind != "info_requested":
        return None
    return Question(str((last.detail or {}).get("question", "")), last.at)
