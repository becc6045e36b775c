"""The delivery worker: an asyncio task that empties the outbox.

Started by the app's lifespan, one per process; any number of processes or
instances may run it against one database, because every message is leased
before it is sent (see outbox.py), and the lease is proved just before each
send and renewed while the send lasts. A message is retried with
back-off (capped at 30 minutes) for days, like a mail server (RFC 5321
§4.5.4.1), and then given up for staff to retry; a permanent refusal ends it
at once; one bad message never holds up the others. While messages wait after
failures, the one that has waited longest is tried every half minute, and when
it goes through every waiting message is due at once: mail queued in an outage
leaves within a minute of the server's return, not on the back-off schedule.
E-mails go to the mailer; rows of kind "webhook" are POSTed to the helpdesk
(webhook.py) with the same rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from form_service.delivery import webhook
from form_service.delivery.emails import MessageError, render, webhook_json
from form_service.delivery.mailer import (
    DeliveryError,
    Mailer,
    PermanentFailure,
    ServerUnavailable,
    TemporaryFailure,
    mailer_for,
)
from form_service.outbox import Delivery, is_webhook
from form_service.settings import Settings, SettingsError
from form_service.store import Store
from form_service.web.activity import Activity

log = logging.getLogger(__name__)
VERIFY = "verify"
# The share of a claim's lease within which a batch may start sending a message
# (run_once); claims are sized to be sent within it.
LEASE_USE = 0.5
# While a message is being sent its lease is renewed every this share of the lease
# (_holding), so a slow send is never taken over by another worker while its own
# worker lives; a worker that died stops renewing, and the lease runs out.
RENEW_EVERY = 1 / 3
# How often, while messages wait after failed tries, the longest-waiting one is tried.
PROBE_EVERY = dt.timedelta(seconds=30)


class LeaseLost(TemporaryFailure):
    """Another worker holds the message now: this one leaves it (not an outage)."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_owner() -> str:
    """host:pid:random, so that no two workers anywhere share a lease owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def retry_delay(attempts: int, base: dt.timedelta, cap: dt.timedelta) -> dt.timedelta:
    """base, 3 x base, 9 x base, ... after the 1st, 2nd, 3rd try, never more than cap."""
    return min(cap, base * 3 ** min(max(attempts, 1) - 1, 20))


def _span(duration: dt.timedelta) -> str:
    """5 days, 12 hours, 30 minutes: how long the worker kept trying, for staff."""
    seconds = duration.total_seconds()
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            value = round(seconds / size, 1)
            return f"{value:g} {unit}{'' if value == 1 else 's'}"
    return f"{seconds:g} seconds"


class Worker:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        owner: str | None = None,
        mailer: Mailer | None = None,
        batch_size: int = 20,
        poll_interval: float = 0.5,
        lease: dt.timedelta = dt.timedelta(minutes=10),
        give_up_after: dt.timedelta | None = None,
        retry_base: dt.timedelta = dt.timedelta(minutes=1),
        retry_cap: dt.timedelta = dt.timedelta(minutes=30),
        probe_every: dt.timedelta = PROBE_EVERY,
        purge_every: dt.timedelta | None = dt.timedelta(hours=1),
        clock: Callable[[], dt.datetime] = _utcnow,
        activity: Activity | None = None,
        quiet: float = 0.05,
        max_defer: float = 5.0,
    ) -> None:
        self.owner = owner or default_owner()
        self._store = store
        self._settings = settings
        self._mailer = mailer or mailer_for(settings)
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        # A claim lasts `lease`; a send proves and renews it when it starts and keeps
        # renewing it while it lasts (_holding).
        self._lease = lease
        self._give_up_after = give_up_after or dt.timedelta(days=settings.delivery_give_up_days)
        self._retry_base = retry_base
        self._retry_cap = retry_cap
        self._probe_every = probe_every
        self._next_probe: dt.datetime | None = None
        # Seconds one send takes, smoothed: claims are sized so that a batch can be
        # sent within LEASE_USE of its lease (a slow mail server, a short lease).
        self._send_seconds: float | None = None
        self._purge_every = purge_every
        self._clock = clock
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._next_purge: dt.datetime | None = None
        # Give way to customers' requests (activity.py): wait for `quiet` seconds
        # without a request, but never longer than `max_defer` since the work began.
        self._activity = activity
        self._quiet = quiet
        self._max_defer = max_defer
        self._deferring_since: float | None = None
        self._urgent = False

    def wake(self, *, urgent: bool = False) -> None:
        """Send what is due now instead of at the next poll; callable from any thread.

        `urgent`: do not give way to customers this time. A verified request's
        ticket is what staff act on, within the Art. 12(3) month, and the customer
        who clicked the link is waiting for the acknowledgement.
        """
        if urgent:
            self._urgent = True
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self._wake.set()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set; errors are logged and retried, never raised."""
        self._loop = asyncio.get_running_loop()
        failures = 0
        while not stop.is_set():
            self._wake.clear()
            handled = 0
            try:
                await self._give_way(stop)
                urgent, self._urgent = self._urgent, False
                await self._purge_if_due()
                await self._probe_if_due()
                handled = await self.run_once(stop, urgent=urgent)
                failures = 0
            except Exception:  # the database is down, say: keep the task alive
                failures += 1
                log.exception("worker %s: a round failed (%d in a row)", self.owner, failures)
            if handled and handled >= self._claim_size():
                continue  # a full batch: more are probably waiting
            self._deferring_since = None  # caught up: the next work may wait again
            delay = min(30.0, self._poll_interval * 2 ** min(failures, 10))
            await self._idle(stop, delay)

    async def _give_way(self, stop: asyncio.Event) -> None:
        """Wait while customers are being served, up to max_defer since the work began."""
        if self._activity is None:
            return
        now = time.monotonic()
        if self._deferring_since is None:
            self._deferring_since = now
        deadline = self._deferring_since + self._max_defer
        while not stop.is_set() and now < deadline and not self._urgent:
            quiet = self._activity.quiet_for()
            if quiet >= self._quiet:
                return
            await asyncio.sleep(min(self._quiet - quiet, deadline - now))
            now = time.monotonic()

    async def _idle(self, stop: asyncio.Event, delay: float) -> None:
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
        try:
            await asyncio.wait(waits, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    def _claim_size(self) -> int:
        """As many messages as can be sent in LEASE_USE of the lease, at most batch_size."""
        if not self._send_seconds:
            return self._batch_size
        fits = int(self._lease.total_seconds() * LEASE_USE / self._send_seconds)
        return max(1, min(self._batch_size, fits))

    async def run_once(self, stop: asyncio.Event | None = None, *, urgent: bool = False) -> int:
        """Claim one batch of due messages, try each once; return how many were claimed.

        With `stop` (from run()), the batch also gives way between its messages,
        unless the round is `urgent`: a customer arriving mid-batch is not kept
        waiting for the rest of it.
        """
        claimed_at = self._clock()
        deliveries = await asyncio.to_thread(
            self._store.claim_messages,
            self.owner,
            limit=self._claim_size(),
            now=claimed_at,
            lease=self._lease,
        )
        if not deliveries:
            return 0
        # Past half the lease, the rest of the batch is put back for any worker to take:
        # giving way to customers or a slow mail server can make a batch slower than
        # its lease, and a message held past it could be taken over while we send it.
        send_until = claimed_at + self._lease * LEASE_USE
        outage: DeliveryError | None = None
        # Messages already sent in this batch, gathered into another verification e-mail.
        done: set[int] = set()
        try:
            for n, delivery in enumerate(deliveries):
                if delivery.id in done:
                    continue
                if n and stop is not None and not urgent:
                    await self._give_way(stop)
                if n and self._clock() >= send_until:
                    rest = [d.id for d in deliveries[n:] if d.id not in done]
                    await asyncio.to_thread(self._store.put_back, rest, self.owner)
                    log.info("worker %s: put back %d messages of a slow batch",
                             self.owner, len(rest))
                    break
                if outage is not None:
                    # The mail server is unreachable: the rest of the batch would only wait
                    # for the same timeout. Not tried, so not counted; they retry later.
                    if not is_webhook(delivery.kind):
                        await self._settle(delivery, outage)
                        continue
                if delivery.kind == VERIFY:
                    outage = await self._send_verification(delivery, done)
                    continue
                if is_webhook(delivery.kind):
                    error = await self._try(delivery, self._call_webhook)
                else:
                    error = await self._try(delivery, self._send)
                if isinstance(error, ServerUnavailable) and not is_webhook(delivery.kind):
                    outage = error
        finally:
            await self._mailer.close()
        return len(deliveries)

    async def _try(self, delivery: Delivery,
                   attempt: Callable[[Delivery], Awaitable[DeliveryError | None]]
                   ) -> DeliveryError | None:
        """One counted try of a claimed message, if its lease is still ours."""
        attempts = await asyncio.to_thread(self._store.start_send, delivery.id, self.owner,
                                           now=self._clock(), lease=self._lease)
        if attempts is None:
            log.info("%s: the lease was taken over; left to its new holder", delivery.message_id)
            return None
        delivery = replace(delivery, attempts=attempts)
        error = await attempt(delivery)
        await self._settle(delivery, error)
        return error

    async def _holding(self, ids: Sequence[int], call: Awaitable[None], *,
                       mail: bool = True) -> None:
        """Await a send while renewing the lease of the messages it carries (the first is
        the one being sent), and time it for the size of the next claim. If the lease
        was lost all the same (this worker stalled longer than its lease), the send is
        cut short: the message's new holder sends it, with the same Message-ID."""
        began = time.monotonic()
        send = asyncio.ensure_future(call)
        every = self._lease.total_seconds() * RENEW_EVERY
        try:
            while not (await asyncio.wait({send}, timeout=every))[0]:
                try:
                    held = await asyncio.to_thread(self._store.renew_leases, ids, self.owner,
                                                   now=self._clock(), lease=self._lease)
                except Exception:  # the database is out of reach: nobody else can take it
                    log.warning("%d: the lease could not be renewed", ids[0], exc_info=True)
                    continue
                if not held:
                    send.cancel()
                    if mail:  # the connection is mid-command: it cannot carry another message
                        await self._mailer.abort()
                    raise LeaseLost("the send outlasted its lease and was left to "
                                    "the worker that took it over")
            await send
        finally:
            if not send.done():
                send.cancel()
                await asyncio.gather(send, return_exceptions=True)
            took = time.monotonic() - began
            self._send_seconds = took if self._send_seconds is None else (
                0.7 * self._send_seconds + 0.3 * took)

    async def _send_verification(self, delivery: Delivery, done: set[int]) -> DeliveryError | None:
        """One verification e-mail under the mailbox's cap, carrying every waiting request
        made with the address; returns the error if the mail server as a whole failed."""
        batch = await asyncio.to_thread(
            self._store.gather_verification, delivery, self.owner, now=self._clock(),
            cap=self._settings.verify_mails_per_day, lease=self._lease,
        )
        if not batch.deliveries:
            if batch.hold_until is not None:
                log.info("%s held back by the mailbox's daily cap until %s",
                         delivery.message_id, batch.hold_until.isoformat(timespec="seconds"))
            return None
        delivery, others = batch.deliveries[0], batch.deliveries[1:]
        error = await self._send(delivery, gathered=others)
        if error is not None and batch.reservation is not None:
            await asyncio.to_thread(self._store.release_reservation, batch.reservation)
        if error is None:
            at = self._clock()
            for other in others:
                await asyncio.to_thread(self._store.mark_sent, other.id, self.owner, at,
                                        sent_as=delivery.message_id)
                done.add(other.id)
        else:
            await asyncio.to_thread(self._store.put_back, [d.id for d in others], self.owner)
        await self._settle(delivery, error)
        return error if isinstance(error, ServerUnavailable) else None

    async def _send(self, delivery: Delivery, *,
                    gathered: Sequence[Delivery] = ()) -> DeliveryError | None:
        try:
            # In a thread: rendering reads the policy file from disk.
            outgoing = await asyncio.to_thread(
                render,
                delivery.kind,
                delivery.record,
                message_id=delivery.message_id,
                settings=self._settings,
                now=self._clock(),
                payload=delivery.payload,
                gathered=[d.record for d in gathered],
            )
            await self._holding([delivery.id, *(d.id for d in gathered)],
                                self._mailer.send(outgoing))
        except DeliveryError as exc:
            return exc
        except MessageError as exc:
            return PermanentFailure(str(exc))
        except Exception as exc:  # a bug must not stop the other messages
            log.exception("delivery %s failed unexpectedly", delivery.message_id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}")
        return None

    async def _call_webhook(self, delivery: Delivery) -> DeliveryError | None:
        settings = self._settings
        try:
            if not settings.webhook_url:
                # Unset after the row was queued: a fault of the setup, so the row
                # waits (and is given up only after every try) rather than vanish.
                raise SettingsError("POLICY_WEBHOOK_URL is not set, so the ticket cannot go out.")
            ticket = await asyncio.to_thread(webhook_json, delivery, settings)
            await self._holding([delivery.id], webhook.deliver(
                settings.webhook_url,
                settings.webhook_secret or settings.secret_key,
                ticket,
                delivery_id=delivery.message_id,
            ), mail=False)
        except webhook.WebhookError as exc:
            if exc.permanent:
                return PermanentFailure(str(exc))
            return TemporaryFailure(str(exc))
        except LeaseLost as exc:
            return exc
        except Exception as exc:  # a bug must not stop the other messages
            if not isinstance(exc, SettingsError):
                log.exception("webhook %s failed unexpectedly", delivery.message_id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}")
        return None

    async def _settle(self, delivery: Delivery, error: DeliveryError | None) -> None:
        at = self._clock()
        webhook_kind = is_webhook(delivery.kind)
        if error is None:
            done = await asyncio.to_thread(self._store.mark_sent, delivery.id, self.owner, at)
            if not done:
                # The lease ran out and another worker took the message over; it
                # will send it again, with the same Message-ID.
                log.warning("%s was sent but its lease had been taken over", delivery.message_id)
            if delivery.attempts > 1:
                # It had failed before and went through now: the server answers again,
                # so what waits in back-off is due now, not on the back-off schedule.
                hurried = await asyncio.to_thread(self._store.hurry_waiting, at,
                                                  webhook=webhook_kind)
                if hurried:
                    log.info("the %s answers again: %d waiting messages are due now",
                             "helpdesk" if webhook_kind else "mail server", hurried)
            return
        give_up_at = (delivery.trying_since or at) + self._give_up_after
        if error.permanent or at >= give_up_at:
            reason = error.reason if error.permanent else (
                f"gave up after {_span(at - (delivery.trying_since or at))} "
                f"({delivery.attempts} tries): {error.reason}"
            )
            log.warning("%s failed: %s", delivery.message_id, reason)
            await asyncio.to_thread(self._store.mark_failed, delivery.id, self.owner, reason, at)
            return
        # The last try falls on the give-up time, not a back-off past it.
        retry_at = min(give_up_at, at + retry_delay(delivery.attempts, self._retry_base,
                                                    self._retry_cap))
        log.info("%s: %s; next try at %s", delivery.message_id, error.reason, retry_at)
        await asyncio.to_thread(
            self._store.mark_retry, delivery.id, self.owner, error.reason, at, retry_at
        )

    async def _probe_if_due(self) -> None:
        """While messages wait after failed tries, make the longest-waiting one due
        every PROBE_EVERY: the first that goes through makes all the others due."""
        now = self._clock()
        if self._next_probe is not None and now < self._next_probe:
            return
        self._next_probe = now + self._probe_every
        for webhook_kind in (False, True):
            await asyncio.to_thread(self._store.wake_one_waiting, now, webhook=webhook_kind)

    async def _purge_if_due(self) -> None:
        """Storage limitation (GDPR Art. 5(1)(e)): delete what is past its time, hourly."""
        if self._purge_every is None:
            return
        now = self._clock()
        if self._next_purge is not None and now < self._next_purge:
            return
        self._next_purge = now + self._purge_every
        result = await asyncio.to_thread(
            self._store.purge,
            now,
            dt.timedelta(hours=self._settings.unverified_ttl_hours),
            dt.timedelta(days=self._settings.retention_days),
        )
        if result.unverified or result.expired:
            log.info("purged %d unverified, %d expired requests", result.unverified, result.expired)
        files = await asyncio.to_thread(self._store.purge_answer_files, now,
                                        self._settings.answers_dir)
        if files:
            log.info("deleted %d answer files past their time", files)
