"""The chaos harness of tests/test_chaos.py and bench/chaos.py: real services, a real SMTP
server that can be slow, refuse or fall silent, customers who submit and confirm as a
browser does, kills with SIGKILL, and the books kept to judge what came out.

Everything is real: `policy-site serve` processes (tests/live_service.py) on SQLite or
PostgreSQL, aiosmtpd on loopback, httpx clients. Nothing here is a mock.

What a scenario is judged by (`Outcome`):
  * every reference shown to a customer is stored;
  * every request confirmed in the database has its ticket (staff) and its acknowledgement
    (customer) at the SMTP server, once; copies of one e-mail are counted by Message-ID
    and by content (recipient + Subject), so that a copy with a new Message-ID shows too;
  * a copy is "explained" when no design could have avoided it: the server had accepted
    the message when the sender died (a kill found the row still pending, leased by the
    killed process, after the server had it) or stopped listening (the server's 250 came
    after the client had hung up);
  * no message failed; the attempts counted on each row against the SMTP exchanges the
    server saw for it and the kills that caught it leased.
"""

from __future__ import annotations

import asyncio
import random
import re
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx2
from aiosmtpd.controller import Controller
from live_service import HIDDEN, REFERENCE, LiveService
from smtp_server import Received, SmtpServer
from sqlalchemy import text

from form_service import db

VERIFY_LINK = re.compile(r"https?://\S+/request/verify/[^\s<>\"]+")
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.IGNORECASE | re.MULTILINE)
SUBJECT = re.compile(rb"^Subject:\s*(.+(?:\r?\n[ \t].+)*)", re.IGNORECASE | re.MULTILINE)
STAFF = "staff@pulkstenu-outlets.lv"  # LiveService's POLICY_STAFF_EMAIL
FORM = "/en/request/"


# -- the SMTP server ------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One message the server read to the end of DATA, and what became of it."""

    at: float  # time.monotonic() when DATA ended
    message_id: str
    outcome: str  # "accepted", "refused" (451), "accepted-unheard" (250 after the hang-up)


class _ChaosHandler:
    def __init__(self, server: ChaosSmtp) -> None:
        self._server = server

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        sink = self._server
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), envelope.content)
        found = MESSAGE_ID.search(envelope.content)
        message_id = found[1].decode() if found else "<none>"
        if sink.refusing:
            sink.record(Exchange(time.monotonic(), message_id, "refused"))
            with sink.lock:
                sink.refused.append(received)
            return "451 4.3.0 Temporary failure, try again"
        if sink.delay:
            if sink.serial:
                async with sink.one_at_a_time:
                    await asyncio.sleep(sink.delay)
            else:
                await asyncio.sleep(sink.delay)
        if sink.silent:
            # The message is taken (a real server would have queued it) but the answer
            # comes only after the client's timeout: it cannot know it was delivered.
            with sink.lock:
                sink.messages.append(received)
            try:
                await asyncio.sleep(sink.silence)
            except asyncio.CancelledError:
                # aiosmtpd ends the session's task when the client hangs up.
                sink.record(Exchange(time.monotonic(), message_id, "accepted-unheard"))
                raise
            transport = getattr(server, "transport", None)
            unheard = transport is None or transport.is_closing()
            sink.record(Exchange(time.monotonic(), message_id,
                                 "accepted-unheard" if unheard else "accepted"))
            return "250 OK"
        with sink.lock:
            sink.messages.append(received)
        sink.record(Exchange(time.monotonic(), message_id, "accepted"))
        return "250 OK"


class ChaosSmtp(SmtpServer):
    """aiosmtpd on loopback that can take `delay` seconds per message (asynchronously: other
    connections go on meanwhile), refuse every DATA with 451, or fall silent after DATA."""

    def __init__(self, delay: float = 0.0, *, serial: bool = False) -> None:
        super().__init__()
        self.delay = delay
        # serial: the server takes one message at a time (the others wait their turn).
        self.serial = serial
        self.one_at_a_time = asyncio.Lock()
        self.refusing = False
        self.silent = False
        self.silence = 20.0  # longer than the mailer's 15 s timeout
        self.exchanges: list[Exchange] = []

    def start(self) -> None:
        controller = Controller(_ChaosHandler(self), hostname=self.host, port=self.port,
                                enable_SMTPUTF8=True)
        controller.start()
        self._controller = controller

    def record(self, exchange: Exchange) -> None:
        with self.lock:
            self.exchanges.append(exchange)

    def accepted(self) -> list[Received]:
        with self.lock:
            return list(self.messages)

    def exchange_counts(self) -> Counter[str]:
        with self.lock:
            return Counter(e.message_id for e in self.exchanges)

    def unheard(self) -> Counter[str]:
        with self.lock:
            return Counter(e.message_id for e in self.exchanges if e.outcome == "accepted-unheard")

    def verify_link_for(self, email: str) -> str | None:
        for message in self.accepted():
            if email in message.recipients and b".verify@" in message.data:
                found = VERIFY_LINK.search(_body(message))
                if found:
                    return found[0]
        return None


def _body(message: Received) -> str:
    part = message.message.get_body(preferencelist=("plain",))
    return str(part.get_content()) if part is not None else ""


# -- customers --------------------------------------------------------------------------


@dataclass
class Tally:
    """What the customers saw, shared by their threads."""

    submitted: int = 0  # form POSTs sent
    acknowledged: list[str] = field(default_factory=list)  # references shown to them
    confirmed: list[str] = field(default_factory=list)  # "Request confirmed" shown
    journeys: int | None = None  # how many customers may still start (None: no end)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_journey(self) -> bool:
        with self.lock:
            if self.journeys is None:
                return True
            if self.journeys <= 0:
                return False
            self.journeys -= 1
            return True

    def add(self, what: str, reference: str) -> None:
        with self.lock:
            getattr(self, what).append(reference)


def _submit(base_url: str, email: str, n: int, tally: Tally) -> str | None:
    """GET the form, POST it, read the reference off the confirmation page (None: failed)."""
    try:
        with httpx2.Client(base_url=base_url, timeout=10,
                           headers={"Origin": base_url}) as client:
            form = client.get(f"{FORM}?type=access")
            if form.status_code != 200:
                return None
            fields = {m["name"]: m["value"] for m in HIDDEN.finditer(form.text)}
            fields.update(name=f"Chaos Customer {n}", email=email, request_type="access",
                          details="Please send me a copy of my data.")
            with tally.lock:
                tally.submitted += 1
            answer = client.post(FORM, data=fields, follow_redirects=True)
    except httpx2.HTTPError:
        return None  # the server went down: nothing was shown
    found = REFERENCE.search(answer.text)
    if answer.status_code == 200 and found:
        return found[0]
    return None


def _confirm(base_url: str, path: str, reference: str) -> bool:
    """Open the link's page and press "confirm" as the page's same-origin POST does; True
    if the page then says that `reference` is confirmed."""
    try:
        with httpx2.Client(base_url=base_url, timeout=10,
                           headers={"Origin": base_url}) as client:
            page = client.get(path)
            if page.status_code != 200:
                return False
            if 'value="confirm"' in page.text:
                fields = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
                answer = client.post(path, data={**fields, "decision": "confirm"})
                if answer.status_code != 303:
                    return False
                page = client.get(answer.headers["location"])
            return (page.status_code == 200 and "Request confirmed" in page.text
                    and reference in page.text)
    except httpx2.HTTPError:
        return False


def customer(targets: Callable[[], list[str]], smtp: ChaosSmtp, tally: Tally,
             stop: threading.Event, n: int, *, mail_wait: float = 30.0,
             retry_for: float = 30.0) -> None:
    """One customer after another until `stop`: submit, wait for the e-mail, confirm.

    `targets` names the instances up now (any of them will do: they share one database).
    A step that meets a dead server is tried again, on another instance if there is one,
    for `retry_for` seconds; a verification e-mail not there after `mail_wait` is left.
    """
    rng = random.Random(n)  # noqa: S311 (which instance, which address: no secret)
    i = 0
    while not stop.is_set() and tally.next_journey():
        reference = email = None
        while reference is None and not stop.is_set():
            # A new address for every try: a POST whose answer was lost to a kill may
            # have been stored, and its e-mail must not be taken for this one's.
            i += 1
            email = f"chaos{n}-{i}-{rng.randrange(10**6)}@example.lv"
            up = targets()
            reference = _submit(rng.choice(up), email, n, tally) if up else None
            if reference is None:
                time.sleep(0.2)
        if reference is None or email is None:
            return
        tally.add("acknowledged", reference)
        deadline = time.monotonic() + mail_wait
        link = None
        while link is None and time.monotonic() < deadline:
            link = smtp.verify_link_for(email)
            if link is None:
                time.sleep(0.2)
        if link is None:
            continue
        path = urllib.parse.urlsplit(link).path
        deadline = time.monotonic() + retry_for
        while time.monotonic() < deadline:
            up = targets()
            # The link names the instance that sent it; any instance up will do.
            own = link[: len(link) - len(path)]
            base = own if own in up else (rng.choice(up) if up else None)
            if base is not None and _confirm(base, path, reference):
                tally.add("confirmed", reference)
                break
            time.sleep(0.3)


class Customers:
    """`count` customer threads, started and stopped together."""

    def __init__(self, count: int, targets: Callable[[], list[str]], smtp: ChaosSmtp,
                 journeys: int | None = None, **options: float) -> None:
        self.tally = Tally(journeys=journeys)
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=customer, daemon=True,
                                         args=(targets, smtp, self.tally, self.stop, n),
                                         kwargs=options)
                        for n in range(count)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, timeout: float) -> None:
        """Wait for the customers to end their journeys (all of them, with `journeys`)."""
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def finish(self, timeout: float = 90) -> None:
        """Stop starting new journeys; let those under way end (each is bounded)."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(timeout=max(0.1, deadline - time.monotonic()))


# -- the database's side ------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    message_id: str
    kind: str
    status: str
    attempts: int
    lease_owner: str | None
    reference: str
    verified: bool


class Books:
    """Reads the outbox and requests of one database (SQLite file or PostgreSQL)."""

    def __init__(self, database_url: str) -> None:
        self._engine = db.create(database_url)

    def rows(self) -> list[Row]:
        with self._engine.connect() as conn:
            found = conn.execute(text(
                "SELECT o.message_id, o.kind, o.status, o.attempts, o.lease_owner, "
                "r.reference, r.verified_at IS NOT NULL FROM outbox o "
                "JOIN requests r ON r.id = o.request_id")).all()
        return [Row(*r) for r in found]

    def references(self) -> dict[str, bool]:
        """Every stored reference, and whether it is confirmed."""
        with self._engine.connect() as conn:
            found = conn.execute(text(
                "SELECT reference, verified_at IS NOT NULL FROM requests")).all()
        return {r[0]: bool(r[1]) for r in found}

    def pending(self) -> int:
        with self._engine.connect() as conn:
            return int(conn.execute(text(
                "SELECT count(*) FROM outbox WHERE status = 'pending'")).scalar_one())

    def wait_drained(self, limit: float) -> float | None:
        """Seconds until no message is pending (None: not within `limit`)."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            if self.pending() == 0:
                return time.monotonic() - began
            time.sleep(0.25)
        return None

    def close(self) -> None:
        self._engine.dispose()


@dataclass
class KillRecord:
    """What one SIGKILL caught: per Message-ID, rows the killed process held leased, and
    those of them the SMTP server already had (sent, but never recorded as sent)."""

    kills: int = 0
    leased: Counter[str] = field(default_factory=Counter)
    accepted_unrecorded: Counter[str] = field(default_factory=Counter)

    def after_kill(self, service: LiveService, pid: int, smtp: ChaosSmtp, books: Books) -> None:
        """Call right after `service` (process `pid`) was killed: reads the server's
        mail and the rows still leased to the dead process."""
        self.kills += 1
        time.sleep(0.3)  # a DATA the dead process had finished sending is read by now
        accepted = {m.message_id for m in smtp.accepted()}
        marker = f":{pid}:"  # the worker's lease owner is host:pid:random
        for row in books.rows():
            if row.status == "pending" and row.lease_owner and marker in row.lease_owner:
                self.leased[row.message_id] += 1
                if row.message_id in accepted:
                    self.accepted_unrecorded[row.message_id] += 1


def kill(service: LiveService, smtp: ChaosSmtp, books: Books, record: KillRecord) -> None:
    assert service.proc is not None
    pid = service.proc.pid
    service.kill()
    record.after_kill(service, pid, smtp, books)


# -- the verdict ----------------------------------------------------------------------------


@dataclass
class Outcome:
    submitted: int
    acknowledged: int
    stored: int  # of the acknowledged
    lost: list[str]  # acknowledged, not stored
    confirmed_seen: int  # "Request confirmed" shown to a customer
    confirmed_unstored: list[str]  # shown confirmed, not confirmed in the database
    verified: int  # confirmed in the database
    tickets: int  # verified requests whose ticket arrived
    acks: int  # verified requests whose acknowledgement arrived
    missing: list[str]  # Message-IDs of messages of verified requests that did not arrive
    copies: Counter[str]  # Message-ID -> extra copies (beyond the first) at the server
    explained: Counter[str]  # of those, the copies no design could avoid
    new_ids: int  # copies of one e-mail (recipient + Subject) under another Message-ID
    failed: list[str]
    pending: int
    attempts_over: dict[str, tuple[int, int, int]]  # id -> (attempts, exchanges, leased kills)
    unexchanged: int  # sum over rows of max(0, attempts - exchanges)
    max_attempts: int
    drain: float | None

    @property
    def duplicates(self) -> int:
        return sum(self.copies.values())

    @property
    def unexplained(self) -> dict[str, int]:
        return {i: n - self.explained[i] for i, n in self.copies.items() if n > self.explained[i]}

    def duplicates_of(self, kind: str) -> int:
        return sum(n for i, n in self.copies.items() if f".{kind}@" in i)


def judge(tally: Tally, smtp: ChaosSmtp, books: Books, kills: KillRecord | None,
          drain: float | None) -> Outcome:
    rows = books.rows()
    stored = books.references()
    arrived = smtp.accepted()
    counts = Counter(m.message_id for m in arrived)
    copies = Counter({i: n - 1 for i, n in counts.items() if n > 1})
    unheard = smtp.unheard()
    explained: Counter[str] = Counter()
    for message_id, extra in copies.items():
        known = unheard[message_id] + (kills.accepted_unrecorded[message_id] if kills else 0)
        explained[message_id] = min(extra, known)
    # The same e-mail (to the same people, under the same Subject) under two Message-IDs.
    by_content: dict[tuple[tuple[str, ...], bytes], set[str]] = {}
    for m in arrived:
        subject = SUBJECT.search(m.data)
        key = (tuple(sorted(m.recipients)), subject[1] if subject else b"")
        by_content.setdefault(key, set()).add(m.message_id)
    new_ids = sum(len(ids) - 1 for ids in by_content.values())
    verified = {ref for ref, yes in stored.items() if yes}
    wanted = [r for r in rows if r.reference in verified and r.kind in ("ticket", "ack")]
    missing = sorted(r.message_id for r in wanted if r.message_id not in counts)
    # A ticket counts at the staff mailbox, an acknowledgement at any (the customer's).
    to_staff = {m.message_id for m in arrived if STAFF in m.recipients}
    got = {r.message_id for r in wanted
           if r.message_id in (to_staff if r.kind == "ticket" else counts)}
    exchanges = smtp.exchange_counts()
    leased = kills.leased if kills else Counter()
    over = {r.message_id: (r.attempts, exchanges[r.message_id], leased[r.message_id])
            for r in rows if r.attempts > exchanges[r.message_id] + leased[r.message_id]}
    acknowledged = list(dict.fromkeys(tally.acknowledged))
    return Outcome(
        submitted=tally.submitted,
        acknowledged=len(acknowledged),
        stored=sum(1 for ref in acknowledged if ref in stored),
        lost=[ref for ref in acknowledged if ref not in stored],
        confirmed_seen=len(set(tally.confirmed)),
        confirmed_unstored=[ref for ref in set(tally.confirmed) if ref not in verified],
        verified=len(verified),
        tickets=sum(1 for r in wanted if r.kind == "ticket" and r.message_id in got),
        acks=sum(1 for r in wanted if r.kind == "ack" and r.message_id in got),
        missing=missing,
        copies=copies,
        explained=explained,
        new_ids=new_ids,
        failed=sorted(r.message_id for r in rows if r.status == "failed"),
        pending=sum(1 for r in rows if r.status == "pending"),
        attempts_over=over,
        unexchanged=sum(max(0, r.attempts - exchanges[r.message_id]) for r in rows),
        max_attempts=max((r.attempts for r in rows), default=0),
        drain=drain,
    )


def up_services(services: Iterable[LiveService]) -> list[str]:
    return [s.base_url for s in services if s.proc is not None and s.proc.poll() is None]
