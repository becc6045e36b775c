"""The tables of the request service (the Alembic migrations create them).

Times are stored in UTC and always come back timezone-aware, on SQLite too,
so that comparisons (leases, back-off, expiry) never mix naive and aware values.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Deterministic constraint names, so that later migrations can name what they alter.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware datetime in, an aware UTC datetime out; naive values are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value!r} must be timezone-aware")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones and compares the stored text, so every value
        # is kept in UTC without an offset: the text order is then the time order.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


def _same_as_due(context: Any) -> Any:
    """A new request's first month ends on its due date, unless said otherwise."""
    return context.get_current_parameters()["due_at"]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Request(Base):
    __tablename__ = "requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str] = mapped_column(String(16), unique=True)
    # The form's one-time id: unique, so a double click never makes two requests.
    submission_id: Mapped[str] = mapped_column(String(100), unique=True)
    request_type: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(Text)
    order_number: Mapped[str | None] = mapped_column(Text)
    details: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    # The evidence of which policy text the customer saw (DESIGN: chain of evidence).
    policy_version: Mapped[str] = mapped_column(String(20))
    policy_sha256: Mapped[str] = mapped_column(String(64))
    policy_language: Mapped[str] = mapped_column(String(8))
    policy_viewed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    verified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The answer is due by due_at; original_due_at is the end of the first month,
    # after which the period can no longer be extended (GDPR Art. 12(3)).
    due_at: Mapped[dt.date] = mapped_column(Date)
    original_due_at: Mapped[dt.date] = mapped_column(Date, default=_same_as_due)
    extended_months: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # unverified -> verified -> (extended) -> done | refused
    status: Mapped[str] = mapped_column(String(20))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    close_reason: Mapped[str | None] = mapped_column(Text)
    # Digest of the normalised mailbox (addresses.mailbox_key): requests made with
    # one address share its cap on verification e-mails.
    mailbox: Mapped[str | None] = mapped_column(String(64))
    # A random per-request value the status link must carry (status.py): the link is
    # long-lived, and deleting the request (or a new value) revokes every copy of it.
    status_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index(None, "status", "submitted_at"),
        Index(None, "status", "due_at"),
        Index(None, "mailbox", "status"),
    )


class OutboxMessage(Base):
    """One e-mail or webhook call; written in the same transaction as the change it reports."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    # Stable across retries, so a message sent twice is recognisably the same one.
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(10))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # When the current round of tries began (None: created_at); the worker gives up
    # a set time after it, and staff's retry starts a new round (migration 0009).
    trying_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "status", "next_attempt_at"),)


class RequestEvent(Base):
    """Append-only history (a trigger refuses updates), hash-chained (chain.py).

    Most events belong to a request; a few belong to the register as a whole
    (an export, a search, the purge's checkpoint) and have no request_id.
    """

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int | None] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # SHA-256 of the previous event's hash and this event's content (chain.py).
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))


class EventChain(Base):
    """One row: the hash of the newest event. Updated in every event's transaction, so
    concurrent writers queue on its row lock and the chain stays a line (PostgreSQL);
    SQLite has one writer anyway."""

    __tablename__ = "event_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    head: Mapped[str] = mapped_column(String(64))


class HealthProbe(Base):
    """One row that /healthz writes: proof that the database still takes writes."""

    __tablename__ = "health_probe"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class VerifyMail(Base):
    """One verification e-mail sent (or on its way) to a mailbox: the cap counts these.

    Kept apart from the requests, which the owner may discard, so that
    discarding does not give a sender their quota back.
    """

    __tablename__ = "verify_mails"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(64))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index(None, "mailbox", "at"),)


class EventCount(Base):
    """Anonymous daily counts, kept after the requests themselves are purged."""

    __tablename__ = "event_counts"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


# -- after the form: answer files and download codes (answer_files.py) ---------


class AnswerFile(Base):
    """A file staff attached to an answer: sealed under var/answers/<stored_as> (sealed.py)."""

    __tablename__ = "answer_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    # Random, never the customer's or staff's file name: the name on disk says nothing.
    stored_as: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    media_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # Set when the purge removed the sealed file: the row stays, so the page can say so.
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DownloadCode(Base):
    """A 6-digit code e-mailed to the request's address; only its HMAC is kept."""

    __tablename__ = "download_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("requests.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    tries: Mapped[int] = mapped_column(Integer, default=0)
    # When the right code was entered: downloads are allowed until expires_at.
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


# -- the staff console (staff/members.py) -------------------------------------


class StaffMember(Base):
    """Someone who may sign in to the console, with a passkey (no passwords exist)."""

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(String(8))
    # WebAuthn user handle: random, never the address (WebAuthn L2 §14.6.1).
    user_handle: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class StaffCredential(Base):
    """A passkey: the public key the authenticator made for this site, and its counter."""

    __tablename__ = "staff_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)  # base64url
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sign_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffInvite(Base):
    """A one-time enrolment link; only its SHA-256 is kept, so the table gives no link away."""

    __tablename__ = "staff_invites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffSession(Base):
    """A signed-in browser. Server-side, so removing a member or signing out ends it at once."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class StaffChallenge(Base):
    """A WebAuthn challenge handed out and not yet answered: each is used once."""

    __tablename__ = "staff_challenges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(20))
    member_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff_members.id", ondelete="CASCADE")
    )
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
