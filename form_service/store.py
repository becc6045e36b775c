"""Durable storage of rights requests (SQLite or PostgreSQL through SQLAlchemy).

A synchronous API, safe to call from many threads at once: the web layer
calls it through run_in_threadpool, the worker through asyncio.to_thread.
Every change writes its history row and, where someone must be told, its
outbox row in the same transaction (DESIGN: data flows form -> store -> worker).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
import threading
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from form_service import chain, db, outbox
from form_service.acting import current_actor
from form_service.addresses import AddressError, mailbox_key
from form_service.deadlines import RIGA, due_date
from form_service.models import (
    EventChain,
    EventCount,
    HealthProbe,
    OutboxMessage,
    Request,
    RequestEvent,
    VerifyMail,
)
from form_service.outbox import Delivery, MessageState
from form_service.records import (
    CLOSED,
    DISCARDED,
    EXTENDED,
    MAX_EXTENSION_MONTHS,
    OPEN,
    UNCONFIRMED,
    UNVERIFIED,
    VERIFIED,
    WITHDRAWN,
    Event,
    NewRequest,
    NotAllowed,
    PurgeResult,
    RequestRecord,
    StoreError,
    UnknownRequest,
    extension_refusal,
)
from form_service.references import new_reference, normalise_reference
from site_config.facts import load_site
from site_config.project import find_project

if TYPE_CHECKING:
    from form_service.settings import Settings

# 40 random bits make a collision rare; a few tries make failure astronomically so.
_REFERENCE_TRIES = 5
# At most this many new requests share one transaction (bounds the time a batch holds the lock).
_GROUP_MAX = 64
# The cap on verification e-mails counts those of the last day.
VERIFY_MAIL_WINDOW = dt.timedelta(days=1)


@dataclass(frozen=True)
class VerifyBatch:
    """What one verification e-mail carries, or until when the mailbox's cap holds it back.

    `deliveries`: the claimed message first, then the other requests made with
    the same address and waiting for their link, now leased to the same worker.
    `reservation`: the mailbox's count of verification e-mails already holds
    this one; give it back (release_reservation) if the e-mail does not go.
    """

    deliveries: list[Delivery]
    hold_until: dt.datetime | None = None
    reservation: int | None = None


_NEW_FIELDS = tuple(f.name for f in fields(NewRequest))
_RECORD_FIELDS = tuple(f.name for f in fields(RequestRecord))


@dataclass(frozen=True)
class _NewRow:
    """The keys of a request just inserted: what its events and messages refer to."""

    id: int
    reference: str


@dataclass(eq=False)
class _Pending:
    """A new request on its way into the database, and what became of it."""

    new: NewRequest
    result: tuple[RequestRecord, bool] | None = None
    error: BaseException | None = None
    done: bool = False


def _project_domain(root: Path | None = None) -> str:
    """The controller's e-mail domain, from the project at `root` or where the process stands."""
    site = load_site(find_project() if root is None else root)
    return site.controller_email.rpartition("@")[2]


def to_record(row: Request) -> RequestRecord:
    return RequestRecord(**{name: getattr(row, name) for name in _RECORD_FIELDS})


def _utc(value: Any) -> Any:
    """Datetimes as UTC, so the record returned now equals the one read back later."""
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else value


def _aware(name: str, value: dt.datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name}={value!r} must be timezone-aware")


class Store:
    def __init__(
        self, database_url: str, *, message_domain: str | None = None, webhook: bool = False,
        timeout: float = 5.0, statement_timeouts: bool = True,
    ) -> None:
        self._engine = db.create(database_url, timeout=timeout, statements=statement_timeouts)
        self._reads = sessionmaker(self._engine, expire_on_commit=False)
        self._writes = sessionmaker(db.writer(self._engine), expire_on_commit=False)
        # SQLite has one writer at a time. Writers of this process queue on a lock
        # instead of all polling SQLite's busy handler, which made the tail latency
        # under load (bench/form_load.py); other processes still meet BEGIN IMMEDIATE.
        sqlite = self._engine.dialect.name == "sqlite"
        self._write_lock: contextlib.AbstractContextManager[Any] = (
            threading.Lock() if sqlite else contextlib.nullcontext()
        )
        # New requests waiting for the write lock (group commit, SQLite only:
        # PostgreSQL commits concurrent transactions side by side).
        self._group_commit = sqlite
        self._queue: list[_Pending] = []
        self._queue_lock = threading.Lock()
        # Message-IDs end in the controller's own domain (RFC 5322 3.6.4: globally unique);
        # without one given, the domain of the project where the process stands.
        self._domain = message_domain or _project_domain()
        # With a helpdesk webhook, a verified request is also queued as a "webhook" call.
        self._webhook = webhook

    @contextlib.contextmanager
    def _write(self) -> Iterator[Session]:
        with self._write_lock, self._writes.begin() as session:
            yield session

    @contextlib.contextmanager
    def reading(self) -> Iterator[Session]:
        """A read transaction, for modules that keep tables of their own (staff/members.py)."""
        with self._reads.begin() as session:
            yield session

    def writing(self) -> contextlib.AbstractContextManager[Session]:
        """A write transaction (queued like the store's own writes on SQLite)."""
        return self._write()

    @property
    def message_domain(self) -> str:
        """The domain every Message-ID ends in (RFC 5322 3.6.4)."""
        return self._domain

    @property
    def webhook_on(self) -> bool:
        """Whether follow-ups also go to the helpdesk webhook."""
        return self._webhook

    def lock_request(self, session: Session, reference: str) -> Request:
        """The request row, locked until `session`'s transaction ends (UnknownRequest if none);
        for modules beside the store (followup.py) that write in store.writing()."""
        return self._for_update(session, reference)

    def purge_answer_files(self, now: dt.datetime, folder: Path) -> int:
        """Delete the answer files past their time, and sealed files no row names
        (answer_files.py); called by the worker's hourly purge. Returns how many went."""
        from form_service import answer_files

        return answer_files.purge(self, now, folder)

    @classmethod
    def from_settings(cls, settings: Settings, *, statement_timeouts: bool = True) -> Store:
        """The store as the settings describe it: database, and whether a webhook is set.

        `statement_timeouts`: off for the staff's commands (db.create)."""
        return cls(settings.database_url, message_domain=_project_domain(settings.root),
                   webhook=bool(settings.webhook_url),
                   timeout=settings.database_timeout_seconds,
                   statement_timeouts=statement_timeouts)

    def migrate(self) -> None:
        db.migrate(self._engine)

    def ping(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except (SQLAlchemyError, OSError):
            return False
        return True

    def probe_write(self, at: dt.datetime) -> None:
        """Commit a write to health_probe's one row; raises if the database takes no writes.

        Reads go on working on a full disk or a read-only replica while every new
        request fails: /healthz asks this so that it does not report healthy then.
        """
        _aware("at", at)
        table = HealthProbe.__table__
        with self._write() as session:
            dialect = session.get_bind().dialect.name
            upsert = _UPSERT[dialect](table).values(id=1, at=at)
            session.execute(upsert.on_conflict_do_update(index_elements=[table.c.id],
                                                         set_={"at": at}))

    @property
    def database_url(self) -> URL:
        """The database this store works on (private.sqlite_path finds a SQLite file in it)."""
        return self._engine.url

    def close(self) -> None:
        self._engine.dispose()

    # -- requests -----------------------------------------------------------

    def create_request(self, new: NewRequest) -> tuple[RequestRecord, bool]:
        """Store a request and its "verify" e-mail; the same submission_id again is a no-op.

        Returns only once the request is committed: the caller may then show the
        reference (DESIGN, "stored durably before the customer sees a reference").
        """
        _aware("submitted_at", new.submitted_at)
        _aware("policy_viewed_at", new.policy_viewed_at)
        pending = _Pending(new)
        if not self._group_commit:
            self._store_batch([pending])
        else:
            # Group commit (SQLite): whoever holds the write lock stores every
            # submission queued meanwhile in one transaction, so one fsync covers
            # them all; the others find theirs done when the lock comes to them.
            with self._queue_lock:
                self._queue.append(pending)
            with self._write_lock:
                if not pending.done:
                    with self._queue_lock:
                        batch, self._queue = self._queue[:_GROUP_MAX], self._queue[_GROUP_MAX:]
                    self._store_batch(batch)
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def _store_batch(self, batch: list[_Pending]) -> None:
        """One transaction for the batch, a savepoint for each request in it.

        A request that fails alone (its savepoint rolled back) does not take the
        others with it; a failed commit fails them all, and none is acknowledged.
        A request alone is first tried without a savepoint, which costs more than
        its rows (bench/form_load.py); if the database refuses it (a duplicate, a
        taken reference) it is tried again the careful way.
        """
        if len(batch) == 1 and self._store_alone(batch[0]):
            return
        try:
            with self._writes.begin() as session:
                for pending in batch:
                    try:
                        pending.result = self._insert(session, pending.new)
                    except Exception as exc:  # raised to its own caller, below
                        pending.error = exc
        except BaseException as exc:
            for pending in batch:
                pending.result, pending.error = None, pending.error or exc
        finally:
            # Each caller, the one that ran the batch included, raises its own error.
            for pending in batch:
                pending.done = True

    def _store_alone(self, pending: _Pending) -> bool:
        """Store one request in a transaction of its own; False: try it with a savepoint."""
        try:
            with self._writes.begin() as session:
                record = self._insert_rows(session, pending.new, new_reference())
        except IntegrityError:
            return False  # rolled back whole: nothing of it was stored
        except BaseException as exc:
            pending.error = exc
        else:
            pending.result = (record, True)
        pending.done = True
        return True

    def _insert(self, session: Session, new: NewRequest) -> tuple[RequestRecord, bool]:
        for _ in range(_REFERENCE_TRIES):
            reference = new_reference()
            try:
                with session.begin_nested():
                    return self._insert_rows(session, new, reference), True
            except IntegrityError:
                # The same submission is stored already (a double click: by another
                # thread or instance, or earlier in this batch), or, rarely, the new
                # reference was taken. The unique indexes decide; we only look.
                existing = self._by_submission(session, new.submission_id)
                if existing is not None:
                    return existing, False
                taken = session.scalar(select(Request.id).where(Request.reference == reference))
                if taken is None:
                    raise
        raise StoreError(f"no free reference found in {_REFERENCE_TRIES} tries")

    def _insert_rows(self, session: Session, new: NewRequest, reference: str) -> RequestRecord:
        """The request's row, its "created" event and its "verify" message."""
        # GDPR Art. 12(3): the month runs from receipt, i.e. submission.
        due = due_date(new.submitted_at)
        try:
            mailbox: str | None = mailbox_key(new.email)
        except AddressError:
            mailbox = None  # not one the form accepts (a test's record): no cap, no gathering
        values: dict[str, Any] = {
            **{name: _utc(getattr(new, name)) for name in _NEW_FIELDS},
            "reference": reference,
            "verified_at": None,
            "due_at": due,
            "original_due_at": due,
            "extended_months": 0,
            "status": UNVERIFIED,
            "mailbox": mailbox,
            "status_key": secrets.token_urlsafe(24),
        }
        # Plain INSERTs (no ORM objects): this is the hot path of every submission,
        # and the unit of work doubled its cost.
        result = session.execute(insert(Request.__table__), values)
        row = _NewRow(id=int(result.inserted_primary_key[0]), reference=reference)
        _event(session, row, "created", new.submitted_at, {"type": new.request_type})
        outbox.enqueue(session, row, "verify", domain=self._domain, at=new.submitted_at)
        return RequestRecord(id=row.id, **values)

    def find_submission(self, submission_id: str) -> RequestRecord | None:
        """The request stored for this form's one-time submission id, if any."""
        with self._reads.begin() as session:
            return self._by_submission(session, submission_id)

    @staticmethod
    def _by_submission(session: Session, submission_id: str) -> RequestRecord | None:
        row = session.scalar(select(Request).where(Request.submission_id == submission_id))
        return None if row is None else to_record(row)

    def get(self, reference: str) -> RequestRecord | None:
        canonical = normalise_reference(reference)
        if canonical is None:
            return None
        with self._reads.begin() as session:
            row = session.scalar(select(Request).where(Request.reference == canonical))
            return None if row is None else to_record(row)

    def verify(self, reference: str, at: dt.datetime) -> tuple[RequestRecord, bool] | None:
        """Mark the e-mail address confirmed, once; the first time, queue ticket and ack.

        GDPR Art. 12(6): control of the address the customer gave is the
        proportionate identity check here, so only a verified request reaches staff.
        """
        with self._write() as session:
            found = self._decide(session, reference, at, {"verified_at": at, "status": VERIFIED})
            if found is None:
                return None
            row, changed = found
            if changed:
                _event(session, row, "verified", at, None)
                kinds = ("ticket", "ack", "webhook") if self._webhook else ("ticket", "ack")
                for kind in kinds:
                    outbox.enqueue(session, row, kind, domain=self._domain, at=at)
            return to_record(row), changed

    def discard(self, reference: str, at: dt.datetime) -> RequestRecord | None:
        """The address's owner did not make this request: it never reaches staff.

        Someone typed another person's address; the owner says so on the
        confirmation page. The request stays (so the link can say what became
        of it, and the history says why) until purged with the unconfirmed ones.
        """
        with self._write() as session:
            found = self._decide(session, reference, at, {"status": DISCARDED})
            if found is None:
                return None
            row, changed = found
            if changed:
                _event(session, row, "discarded", at,
                       {"reason": "the owner of the e-mail address did not make this request"})
            return to_record(row)

    @staticmethod
    def _decide(session: Session, reference: str, at: dt.datetime,
                values: dict[str, Any]) -> tuple[Request, bool] | None:
        """Apply the owner's decision to an unconfirmed request; (row, whether it changed).

        A conditional UPDATE decides atomically which of two clicks (two tabs, two
        instances) is the first one; the other finds the request already decided.
        """
        _aware("at", at)
        canonical = normalise_reference(reference)
        if canonical is None:
            return None
        changed = session.execute(
            update(Request)
            .where(Request.reference == canonical, Request.status == UNVERIFIED)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount
        row = session.scalar(select(Request).where(Request.reference == canonical))
        return None if row is None else (row, bool(changed))

    # -- the staff's workflow -----------------------------------------------

    def list_requests(
        self, *, statuses: Collection[str] | None = None, request_type: str | None = None
    ) -> list[RequestRecord]:
        """Requests, oldest first; only those with one of `statuses` and of `request_type`.

        Without `statuses`, every request but the discarded ones: a request the
        address's owner disowned is not one staff act on.
        """
        query = select(Request).order_by(Request.submitted_at, Request.id)
        if statuses is not None:
            query = query.where(Request.status.in_(list(statuses)))
        else:
            query = query.where(Request.status != DISCARDED)
        if request_type is not None:
            query = query.where(Request.request_type == request_type)
        with self._reads.begin() as session:
            return [to_record(row) for row in session.scalars(query)]

    def overdue(self, today: dt.date, within_days: int | None = None) -> list[RequestRecord]:
        """Open requests whose due date has passed, or (within_days) falls within that many days.

        Unconfirmed requests are not counted: they are not yet a request staff
        may act on (GDPR Art. 12(6)), and they are deleted long before a month.
        """
        if within_days is None:
            condition = Request.due_at < today
        else:
            condition = Request.due_at <= today + dt.timedelta(days=within_days)
        query = (
            select(Request)
            .where(Request.status.in_(OPEN), condition)
            .order_by(Request.due_at, Request.submitted_at, Request.id)
        )
        with self._reads.begin() as session:
            return [to_record(row) for row in session.scalars(query)]

    def extend(self, reference: str, months: int, reason: str, at: dt.datetime) -> RequestRecord:
        """Extend the period by `months`, record why, and queue the "extend" e-mail.

        GDPR Art. 12(3): by at most two further months in total, "where
        necessary", and the customer must be told of it, with the reasons,
        within the first month: so never once the first month has ended.
        """
        _aware("at", at)
        if months not in range(1, MAX_EXTENSION_MONTHS + 1):
            raise ValueError(f"an extension is 1 or 2 months, not {months}")
        reason = _reason(reason, "extending the period")
        with self._write() as session:
            row = self._for_update(session, reference)
            _require_open(row)
            refusal = extension_refusal(to_record(row), months, at.astimezone(RIGA).date())
            if refusal == "first_month_over":
                raise NotAllowed(
                    f"{row.reference} can no longer be extended: its first month ended on "
                    f"{row.original_due_at.isoformat()}, and GDPR Art. 12(3) requires the "
                    "customer to be told of an extension within the first month"
                )
            total = row.extended_months + months
            if refusal == "too_many":
                raise NotAllowed(
                    f"{row.reference} is already extended by {row.extended_months} month(s); "
                    f"GDPR Art. 12(3) allows at most {MAX_EXTENSION_MONTHS} further months "
                    "in total"
                )
            previous = row.due_at
            row.due_at = due_date(row.submitted_at, 1 + total)
            row.extended_months = total
            row.status = EXTENDED
            detail = {
                "months": months,
                "extended_months": total,
                "reason": reason,
                "previous_due_at": previous.isoformat(),
                "due_at": row.due_at.isoformat(),
            }
            _event(session, row, "extended", at, detail)
            # The second extension is a second message: it needs its own Message-ID.
            earlier = session.scalar(
                select(func.count()).select_from(OutboxMessage).where(
                    OutboxMessage.request_id == row.id, OutboxMessage.kind == "extend"
                )
            )
            outbox.enqueue(session, row, "extend", domain=self._domain, at=at,
                           payload=detail, n=int(earlier or 0) + 1)
            return to_record(row)

    def close_request(
        self, reference: str, outcome: str, reason: str, at: dt.datetime
    ) -> RequestRecord:
        """Record the answer (done or refused), and queue the "close" e-mail that gives it.

        For a refusal, that e-mail carries the reasons and the right to complain
        and to seek a judicial remedy (GDPR Art. 12(4)).
        """
        _aware("at", at)
        if outcome not in CLOSED:
            raise ValueError(f"the outcome is done or refused, not {outcome!r}")
        reason = _reason(reason, "closing a request")
        with self._write() as session:
            row = self._for_update(session, reference)
            _require_open(row)
            row.status = outcome
            row.closed_at = at
            row.close_reason = reason
            detail = {
                "outcome": outcome,
                "reason": reason,
                "closed_at": at.astimezone(dt.UTC).isoformat(),
                "due_at": row.due_at.isoformat(),
                "late": at.astimezone(RIGA).date() > row.due_at,
            }
            _event(session, row, "closed", at, detail)
            outbox.enqueue(session, row, "close", domain=self._domain, at=at, payload=detail)
            return to_record(row)

    def _for_update(self, session: Session, reference: str) -> Request:
        """The request, locked until the transaction ends, so two staff actions queue up."""
        canonical = normalise_reference(reference)
        row = None
        if canonical is not None:
            row = session.scalar(
                select(Request).where(Request.reference == canonical).with_for_update()
            )
        if row is None:
            raise UnknownRequest(reference)
        return row

    def record_view(self, reference: str, at: dt.datetime) -> RequestRecord:
        """The request, and an event saying who (the current actor) was shown its data.

        GDPR Art. 5(2): the controller can show who saw a requester's personal data.
        """
        _aware("at", at)
        with self._write() as session:
            row = self._for_update(session, reference)
            _event(session, row, "viewed", at, None)
            return to_record(row)

    def add_note(self, reference: str, text: str, at: dt.datetime) -> None:
        """An internal note in the request's history: for staff only, never e-mailed."""
        _aware("at", at)
        text = _reason(text, "a note")
        with self._write() as session:
            row = self._for_update(session, reference)
            _event(session, row, "note", at, {"text": text})

    def register_event(self, kind: str, at: dt.datetime, detail: dict[str, Any]) -> None:
        """An event about the register as a whole (an export, a search), in the chain."""
        _aware("at", at)
        with self._write() as session:
            _event(session, None, kind, at, detail)

    def register_events(self, limit: int = 50) -> list[Event]:
        """The newest events of the register as a whole, newest first."""
        with self._reads.begin() as session:
            rows = session.scalars(
                select(RequestEvent).where(RequestEvent.request_id.is_(None))
                .order_by(RequestEvent.id.desc()).limit(limit)
            )
            return [Event(r.kind, r.at, r.detail) for r in rows]

    def retry_failed(self, reference: str | None, at: dt.datetime) -> int:
        """Put the failed messages of one request (all requests: None) back in the queue.

        Each keeps its Message-ID, so a receiver that did get it after all can drop
        the repeat; each is recorded as an event. Returns how many were queued.
        """
        _aware("at", at)
        with self._write() as session:
            query = (select(OutboxMessage).where(OutboxMessage.status == outbox.FAILED)
                     .order_by(OutboxMessage.id).with_for_update())
            if reference is not None:
                row = self._for_update(session, reference)
                query = query.where(OutboxMessage.request_id == row.id)
            messages = session.scalars(query).all()
            for message in messages:
                message.status = outbox.PENDING
                message.attempts = 0
                message.next_attempt_at = at
                # A new round: the worker tries for the full time again (worker._settle).
                message.trying_since = at
                message.lease_owner = message.lease_until = None
                _event(session, message, _delivery_event(message, "retried"), at,
                       {"kind": message.kind, "message_id": message.message_id})
            return len(messages)

    def verify_log(self) -> tuple[chain.Verdict, str | None]:
        """Walk the whole history's hash chain (chain.py); the verdict, and the reference
        of the request whose event breaks it (None: the register's own, or none broken)."""
        with self._engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # One snapshot for head and events, while the service goes on writing.
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with Session(bind=conn) as session, session.begin():
                head = session.scalar(select(EventChain.head).where(EventChain.id == 1))
                bridges: dict[str, str] = {}
                for link in _links(session, RequestEvent.kind == chain.CHECKPOINT):
                    bridges.update(chain.bridges_of(link))
                rows = session.execute(
                    select(RequestEvent.id, RequestEvent.request_id, RequestEvent.kind,
                           RequestEvent.at, RequestEvent.detail, RequestEvent.prev_hash,
                           RequestEvent.hash)
                    .order_by(RequestEvent.id).execution_options(yield_per=1000)
                )
                try:
                    verdict = chain.walk((chain.Link(*row) for row in rows), head, bridges)
                finally:
                    rows.close()  # the walk may stop early: close the server-side cursor
                reference = None
                if verdict.broken_at is not None and verdict.broken_at.request_id is not None:
                    reference = session.scalar(
                        select(Request.reference).where(
                            Request.id == verdict.broken_at.request_id))
                return verdict, reference

    def events(self, reference: str) -> list[Event]:
        with self._reads.begin() as session:
            rows = session.scalars(
                select(RequestEvent)
                .join(Request, Request.id == RequestEvent.request_id)
                .where(Request.reference == reference)
                .order_by(RequestEvent.id)
            )
            return [Event(r.kind, r.at, r.detail) for r in rows]

    def events_by_reference(self, kind: str | None = None) -> dict[str, list[Event]]:
        """Every request's history (only events of `kind`, if given), in one query."""
        query = (
            select(Request.reference, RequestEvent)
            .join(Request, Request.id == RequestEvent.request_id)
            .order_by(RequestEvent.id)
        )
        if kind is not None:
            query = query.where(RequestEvent.kind == kind)
        found: dict[str, list[Event]] = {}
        with self._reads.begin() as session:
            for reference, r in session.execute(query):
                found.setdefault(reference, []).append(Event(r.kind, r.at, r.detail))
        return found

    def event_counts(self) -> dict[tuple[str, dt.date], int]:
        with self._reads.begin() as session:
            return {(c.kind, c.day): c.count for c in session.scalars(select(EventCount))}

    def purge(
        self, now: dt.datetime, unverified_ttl: dt.timedelta, retention: dt.timedelta
    ) -> PurgeResult:
        """Delete what may no longer be kept (GDPR Art. 5(1)(c), (e)); keep anonymous counts.

        Unverified (and discarded) requests go after `unverified_ttl` from
        submission; all others after `retention`. Their outbox rows and history go with them
        (ON DELETE CASCADE); event_counts already holds their daily counts.
        """
        _aware("now", now)
        unconfirmed = (Request.status.in_(UNCONFIRMED),
                       Request.submitted_at < now - unverified_ttl)
        old = (Request.status.not_in(UNCONFIRMED), Request.submitted_at < now - retention)
        with self._write() as session:
            # The history of what is deleted leaves gaps in the hash chain: record each
            # (a checkpoint event), so that verify-log can tell the purge from tampering.
            doomed = select(Request.id).where(or_(and_(*unconfirmed), and_(*old)))
            removed = _links(session, RequestEvent.request_id.in_(doomed))
            unverified = _delete_requests(session, *unconfirmed)
            expired = _delete_requests(session, *old)
            if removed:
                _event(session, None, chain.CHECKPOINT, now, chain.checkpoint_detail(
                    chain.bridges_over(removed), unverified + expired))
            # The cap looks one day back; older counts are of no use.
            session.execute(delete(VerifyMail).where(VerifyMail.at < now - 2 * VERIFY_MAIL_WINDOW))
            day = now.astimezone(RIGA).date()
            if unverified:
                _count(session, "purged_unverified", day, unverified)
            if expired:
                _count(session, "purged_retention", day, expired)
        return PurgeResult(unverified=unverified, expired=expired)

    # -- outbox -------------------------------------------------------------

    def claim_messages(
        self, owner: str, *, limit: int, now: dt.datetime, lease: dt.timedelta
    ) -> list[Delivery]:
        _aware("now", now)
        with self._write() as session:
            claimed = outbox.claim(session, owner, limit=limit, now=now, lease=lease)
            return [
                Delivery(m.id, m.kind, m.message_id, m.attempts, m.payload, to_record(r),
                         outbox.trying_since(m))
                for m, r in claimed
            ]

    def start_send(self, outbox_id: int, owner: str, *, now: dt.datetime,
                   lease: dt.timedelta) -> int | None:
        """Begin a try of a claimed message (outbox.start): the number of tries made,
        this one included; None if the lease was lost and the message must be left."""
        _aware("now", now)
        with self._write() as session:
            row = outbox.start(session, outbox_id, owner, now=now, lease=lease)
            return None if row is None else row.attempts

    def renew_leases(self, outbox_ids: Sequence[int], owner: str, *, now: dt.datetime,
                     lease: dt.timedelta) -> bool:
        """Extend the lease of messages being sent; False if the first (the one being
        sent) is no longer `owner`'s. The others are carried in the same e-mail."""
        _aware("now", now)
        first, *others = outbox_ids
        with self._write() as session:
            renewed = session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == first, OutboxMessage.lease_owner == owner,
                       OutboxMessage.status == outbox.PENDING)
                .values(lease_until=now + lease)
                .execution_options(synchronize_session=False)
            ).rowcount
            if others:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id.in_(others), OutboxMessage.lease_owner == owner,
                           OutboxMessage.status == outbox.PENDING)
                    .values(lease_until=now + lease)
                    .execution_options(synchronize_session=False)
                )
            return bool(renewed)

    def wake_one_waiting(self, now: dt.datetime, *, webhook: bool = False) -> bool:
        """Make the longest-waiting failed message due now (outbox.wake_one)."""
        _aware("now", now)
        with self._write() as session:
            return outbox.wake_one(session, now=now, webhook=webhook)

    def hurry_waiting(self, now: dt.datetime, *, webhook: bool = False) -> int:
        """Make every message waiting in back-off due now (outbox.hurry)."""
        _aware("now", now)
        with self._write() as session:
            return outbox.hurry(session, now=now, webhook=webhook)

    def mark_sent(self, outbox_id: int, owner: str, at: dt.datetime, *,
                  sent_as: str | None = None) -> bool:
        """Record a delivery; False (and nothing changed) if the lease is no longer ours.

        `sent_as`: the Message-ID of the e-mail that carried this message, when it
        went out gathered into another one (a verification e-mail listing several).
        """
        with self._write() as session:
            row = outbox.leased(session, outbox_id, owner)
            if row is None:
                return False
            outbox.release(row, outbox.SENT)
            row.sent_at = at
            if row.kind in outbox.SECRET_PAYLOADS:
                # A download code is a credential: once it has left, no copy is kept.
                row.payload = None
            _event(session, row, _delivery_event(row, "sent"), at,
                   {"kind": row.kind, "message_id": sent_as or row.message_id})
            return True

    # -- the cap on verification e-mails --------------------------------------

    def gather_verification(
        self, delivery: Delivery, owner: str, *, now: dt.datetime, cap: int,
        lease: dt.timedelta, most: int = 10,
    ) -> VerifyBatch:
        """Decide one verification e-mail: hold it back under the mailbox's cap, or
        gather into it every other request made with the address and still waiting.

        The cap (at most `cap` verification e-mails to a mailbox a day) keeps the
        form from being used to flood someone's inbox. It refuses nobody: what the
        cap holds back goes out, gathered, once the day's count allows, so a third
        party filing in someone's name cannot stop that person filing their own
        request. Up to `most` requests are listed in one e-mail, newest first.
        """
        _aware("now", now)
        mailbox = delivery.record.mailbox
        with self._write() as session:
            if session.get_bind().dialect.name == "postgresql" and mailbox is not None:
                # One decision at a time per mailbox, across instances; SQLite's
                # single writer already serialises this transaction.
                session.execute(select(func.pg_advisory_xact_lock(
                    func.hashtextextended(mailbox, 0))))
            row = outbox.leased(session, delivery.id, owner)
            if row is None:
                return VerifyBatch([])
            if mailbox is None:
                outbox.begin(row, now=now, lease=lease)
                return VerifyBatch([replace(delivery, attempts=row.attempts)])
            sent = session.scalars(
                select(VerifyMail.at)
                .where(VerifyMail.mailbox == mailbox, VerifyMail.at > now - VERIFY_MAIL_WINDOW)
                .order_by(VerifyMail.at)
            ).all()
            if len(sent) >= cap:
                # Not a try: the message waits for the day's count to allow it.
                until = sent[len(sent) - cap] + VERIFY_MAIL_WINDOW
                outbox.release(row, outbox.PENDING)
                row.next_attempt_at = until
                return VerifyBatch([], hold_until=until)
            # The e-mail goes: this is a try of the claimed message (outbox.start).
            outbox.begin(row, now=now, lease=lease)
            reservation = session.execute(
                insert(VerifyMail.__table__), {"mailbox": mailbox, "at": now}
            ).inserted_primary_key[0]
            others = session.execute(
                select(OutboxMessage, Request)
                .join(Request, Request.id == OutboxMessage.request_id)
                .where(
                    Request.mailbox == mailbox,
                    Request.status == UNVERIFIED,
                    OutboxMessage.kind == "verify",
                    OutboxMessage.status == outbox.PENDING,
                    OutboxMessage.id != delivery.id,
                    # Free, or claimed by this same worker in its current batch.
                    or_(OutboxMessage.lease_until.is_(None), OutboxMessage.lease_until <= now,
                        OutboxMessage.lease_owner == owner),
                )
                .order_by(Request.submitted_at.desc(), Request.id.desc())
                .limit(max(0, most - 1))
                .with_for_update(of=OutboxMessage, skip_locked=True)
            ).all()
            gathered = [replace(delivery, attempts=row.attempts)]
            for message, request in others:
                message.lease_owner = owner
                message.lease_until = now + lease
                gathered.append(Delivery(message.id, message.kind, message.message_id,
                                         message.attempts, message.payload, to_record(request),
                                         outbox.trying_since(message)))
            return VerifyBatch(gathered, reservation=int(reservation))

    def release_reservation(self, reservation: int) -> None:
        """The verification e-mail did not go: it does not count against the cap."""
        with self._write() as session:
            session.execute(delete(VerifyMail).where(VerifyMail.id == reservation))

    def put_back(self, outbox_ids: Collection[int], owner: str) -> None:
        """Unlease gathered messages whose e-mail did not go, without counting a try."""
        if not outbox_ids:
            return
        with self._write() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(list(outbox_ids)),
                       OutboxMessage.lease_owner == owner,
                       OutboxMessage.status == outbox.PENDING)
                .values(lease_owner=None, lease_until=None)
                .execution_options(synchronize_session=False)
            )

    def mark_retry(
        self, outbox_id: int, owner: str, error: str, at: dt.datetime, next_attempt_at: dt.datetime
    ) -> bool:
        with self._write() as session:
            row = outbox.leased(session, outbox_id, owner)
            if row is None:
                return False
            outbox.release(row, outbox.PENDING, error=error)
            row.next_attempt_at = next_attempt_at
            return True

    def mark_failed(self, outbox_id: int, owner: str, error: str, at: dt.datetime) -> bool:
        with self._write() as session:
            row = outbox.leased(session, outbox_id, owner)
            if row is None:
                return False
            outbox.release(row, outbox.FAILED, error=error)
            _event(session, row, _delivery_event(row, "failed"), at,
                   {"kind": row.kind, "error": error[:500]})
            return True

    def messages(self, reference: str) -> list[MessageState]:
        with self._reads.begin() as session:
            rows = session.scalars(
                select(OutboxMessage)
                .join(Request, Request.id == OutboxMessage.request_id)
                .where(Request.reference == reference)
                .order_by(OutboxMessage.id)
            )
            return [outbox.state(r) for r in rows]

    def failed_messages(self) -> list[tuple[str, MessageState]]:
        """Every message given up on, with its request's reference: staff must act by hand."""
        with self._reads.begin() as session:
            rows = session.execute(
                select(Request.reference, OutboxMessage)
                .join(Request, Request.id == OutboxMessage.request_id)
                .where(OutboxMessage.status == outbox.FAILED)
                .order_by(OutboxMessage.id)
            )
            return [(reference, outbox.state(row)) for reference, row in rows]

    # -- monitoring ---------------------------------------------------------

    def health(self, today: dt.date) -> HealthCounts:
        """What monitoring watches, as counts only: no reference, name or address leaves here."""
        with self._reads.begin() as session:
            pending, oldest = session.execute(
                select(func.count(), func.min(OutboxMessage.created_at))
                .where(OutboxMessage.status == outbox.PENDING)
            ).one()
            failed = session.scalar(
                select(func.count()).select_from(OutboxMessage)
                .where(OutboxMessage.status == outbox.FAILED)
            )
            overdue = session.scalar(
                select(func.count()).select_from(Request)
                .where(Request.status.in_(OPEN), Request.due_at < today)
            )
        return HealthCounts(pending=int(pending), oldest_pending_at=oldest,
                            failed=int(failed or 0), overdue=int(overdue or 0))


@dataclass(frozen=True)
class HealthCounts:
    pending: int  # outbox messages not yet delivered (including those waiting to retry)
    oldest_pending_at: dt.datetime | None  # when the oldest of them was queued
    failed: int  # messages given up on: staff must act by hand
    overdue: int  # open requests past their due date


def _reason(text: str, doing: str) -> str:
    """The reason staff give, which the customer will read: required, plain text."""
    cleaned = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").strip()
    if not cleaned:
        raise ValueError(f"a reason is required for {doing}: the customer is told it")
    return cleaned


def _require_open(row: Request) -> None:
    if row.status == UNVERIFIED:
        raise NotAllowed(
            f"{row.reference} is not confirmed yet: the customer has not confirmed it on "
            "the page the confirmation e-mail links to"
        )
    if row.status == DISCARDED:
        raise NotAllowed(
            f"{row.reference} was discarded: the owner of the e-mail address said they "
            "did not make it"
        )
    if row.status in CLOSED:
        closed = row.closed_at.astimezone(RIGA).date().isoformat() if row.closed_at else "?"
        raise NotAllowed(f"{row.reference} was already closed as {row.status} on {closed}")
    if row.status == WITHDRAWN:
        closed = row.closed_at.astimezone(RIGA).date().isoformat() if row.closed_at else "?"
        raise NotAllowed(f"{row.reference} was withdrawn by the customer on {closed}")


def _delivery_event(row: OutboxMessage, outcome: str) -> str:
    return f"webhook_{outcome}" if outbox.is_webhook(row.kind) else f"mail_{outcome}"


def _delete_requests(session: Session, *conditions: Any) -> int:
    result = session.execute(
        delete(Request).where(*conditions).execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def _event(
    session: Session,
    row: Request | OutboxMessage | _NewRow | None,
    kind: str,
    at: dt.datetime,
    detail: dict[str, Any] | None,
) -> None:
    """Append one event, chained to the one before it (chain.py), in the caller's transaction.

    Every event of the service is written here. `row` None: an event of the
    register as a whole. The staff member (or OS user) acting, if any, is named
    in the detail (acting.py; GDPR Art. 5(2)).
    """
    request_id = None if row is None else (
        row.request_id if isinstance(row, OutboxMessage) else row.id)
    actor = current_actor()
    if actor is not None:
        detail = {**(detail or {}), **actor.detail()}
    at = at.astimezone(dt.UTC)
    # The chain head's row lock is held until commit: concurrent writers (PostgreSQL)
    # each link to the one committed before them. Taken after every other lock of the
    # transaction (rows first, head last), so it cannot be part of a lock cycle.
    head = session.execute(_HEAD_FOR_UPDATE).scalar_one()
    digest = chain.link_hash(head, request_id, kind, at, detail)
    # A plain INSERT: events are only ever appended, never read back in the same
    # transaction, and the ORM's unit of work cost more than the row (bench/form_load.py).
    session.execute(insert(RequestEvent.__table__),
                    {"request_id": request_id, "kind": kind, "at": at, "detail": detail,
                     "prev_hash": head, "hash": digest})
    session.execute(_HEAD_UPDATE, {"head": digest})
    _count(session, kind, at.astimezone(RIGA).date(), 1)


def append_event(session: Session, row: Request | None, kind: str, at: dt.datetime,
                 detail: dict[str, Any] | None) -> None:
    """One event in the hash-chained history, in the caller's transaction (for modules
    beside the store that write in store.writing(); the same path as the store's own)."""
    _event(session, row, kind, at, detail)


_HEAD_FOR_UPDATE = select(EventChain.head).where(EventChain.id == 1).with_for_update()
_HEAD_UPDATE = update(EventChain).where(EventChain.id == 1).values(head=bindparam("head"))


def _links(session: Session, *conditions: Any) -> list[chain.Link]:
    rows = session.execute(
        select(RequestEvent.id, RequestEvent.request_id, RequestEvent.kind, RequestEvent.at,
               RequestEvent.detail, RequestEvent.prev_hash, RequestEvent.hash)
        .where(*conditions).order_by(RequestEvent.id)
    )
    return [chain.Link(*row) for row in rows]


def _count(session: Session, kind: str, day: dt.date, n: int) -> None:
    """Add n to the day's anonymous count of `kind` (an upsert, safe under concurrency)."""
    dialect = session.get_bind().dialect.name
    session.execute(_COUNT_UPSERT[dialect], {"kind": kind, "day": day, "n": n})


def _count_upsert(insert: Any) -> Any:
    # Built once with bound parameters, so that SQLAlchemy compiles it once.
    table = EventCount.__table__
    return insert(table).values(
        kind=bindparam("kind"), day=bindparam("day"), count=bindparam("n")
    ).on_conflict_do_update(
        index_elements=[table.c.kind, table.c.day],
        set_={"count": table.c.count + bindparam("n")},
    )


_UPSERT = {"sqlite": sqlite_insert, "postgresql": pg_insert}
_COUNT_UPSERT = {name: _count_upsert(insert) for name, insert in _UPSERT.items()}
