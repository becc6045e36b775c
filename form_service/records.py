"""What a rights request is, as the rest of the service sees it: its fields, its states,
and the errors of the store that keeps it.

The lowest layer of the service: the store, the outbox, the e-mails and the
pages all use these types, and this module uses none of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

UNVERIFIED, VERIFIED, EXTENDED = "unverified", "verified", "extended"
DONE, REFUSED = "done", "refused"
# The owner of the address said "I did not ask for this": never shown to staff as a
# request, deleted with the unconfirmed ones.
DISCARDED = "discarded"
# The customer withdrew a confirmed request on its status page: nobody acts on it any more.
WITHDRAWN = "withdrawn"
# Open: confirmed and waiting for an answer. Closed: answered, one way or the other.
OPEN, CLOSED = (VERIFIED, EXTENDED), (DONE, REFUSED)
STATUSES = (UNVERIFIED, *OPEN, *CLOSED, WITHDRAWN, DISCARDED)
# Never confirmed: kept only for POLICY_UNVERIFIED_TTL_HOURS.
UNCONFIRMED = (UNVERIFIED, DISCARDED)
# GDPR Art. 12(3): "extended by two further months", in total.
MAX_EXTENSION_MONTHS = 2

class StoreError(Exception):
    """Raised when the store cannot do what was asked for a reason other than the database."""


class UnknownRequest(StoreError):
    """Raised when no request has the reference given (mistyped, never made, or purged)."""

    def __init__(self, reference: str) -> None:
        super().__init__(f"there is no request {reference!r}; check the reference "
                         "(unconfirmed and expired requests are deleted)")
        self.reference = reference


class NotAllowed(StoreError):
    """Raised when a staff action does not fit the request as it stands (its status, GDPR)."""


@dataclass(frozen=True)
class NewRequest:
    submission_id: str
    request_type: str
    name: str
    email: str
    phone: str | None
    order_number: str | None
    details: str
    language: str
    policy_version: str
    policy_sha256: str
    policy_language: str
    policy_viewed_at: dt.datetime
    submitted_at: dt.datetime


@dataclass(frozen=True)
class RequestRecord(NewRequest):
    """A stored request: what was submitted, and what the service made of it."""

    id: int
    reference: str
    verified_at: dt.datetime | None
    due_at: dt.date
    status: str
    # Defaults, so that a record built by hand (tests) need not spell them out.
    original_due_at: dt.date | None = None
    extended_months: int = 0
    closed_at: dt.datetime | None = None
    close_reason: str | None = None
    mailbox: str | None = None  # addresses.mailbox_key of the e-mail address
    status_key: str | None = None  # what the status link must carry (status.py)

    @property
    def first_month_due(self) -> dt.date:
        """The end of the first month: the last day on which the period can be extended."""
        return self.original_due_at or self.due_at

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    def overdue(self, today: dt.date) -> bool:
        return self.is_open and self.due_at < today


def extension_refusal(record: RequestRecord, months: int, today: dt.date) -> str | None:
    """Why GDPR Art. 12(3) does not allow extending `record` by `months` today, or None.

    "not_open": only a confirmed, unanswered request has a period to extend;
    "first_month_over": the customer must be told within the first month;
    "too_many": at most two further months in total.
    """
    if not record.is_open:
        return "not_open"
    if today > record.first_month_due:
        return "first_month_over"
    if record.extended_months + months > MAX_EXTENSION_MONTHS:
        return "too_many"
    return None


@dataclass(frozen=True)
class Event:
    kind: str
    at: dt.datetime
    detail: dict[str, Any] | None


@dataclass(frozen=True)
class PurgeResult:
    unverified: int  # never confirmed within the TTL
    expired: int  # kept for the whole retention period
