"""The delivery worker: an asyncio task that empties the outbox.

Started by the app's lifespan, one per process; any number of processes or
instances may run it against one database, because every message is leased
before it is sent (see outbox.py). A message is retried with exponential
back-off a bounded number of times; a permanent refusal ends it at once;
one bad message never holds up the others. E-mails go to the mailer; rows of
kind "webhook" are POSTed to the helpdesk (webhook.py) with the same rules.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

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
from form_service.records import RequestRecord
from form_service.settings import Settings, SettingsError
from form_service.store import Store
from form_service.web.activity import Activity

log = logging.getLogger(__name__)
WEBHOOK, VERIFY = "webhook", "verify"
# The share of a lease within which a batch may start sending a message (run_once).
LEASE_USE = 0.5


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_owner() -> str:
    """host:pid:random, so that no two workers anywhere share a lease owner."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def retry_delay(attempts: int, base: dt.timedelta, cap: dt.timedelta) -> dt.timedelta:
    """base, 3 x base, 9 x base, ... after the 1st, 2nd, 3rd try, never more than cap."""
    return min(cap, base * 3 ** min(attempts - 1, 20))


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
        max_attempts: int = 8,
        retry_base: dt.timedelta = dt.timedelta(minutes=1),
        retry_cap: dt.timedelta = dt.timedelta(hours=6),
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
        # Longer than a batch can take (batch_size x SMTP timeout), or a slow
        # worker's messages would be taken over and sent twice.
        self._lease = lease
        self._max_attempts = max_attempts
        self._retry_base = retry_base
        self._retry_cap = retry_cap
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
                handled = await self.run_once(stop, urgent=urgent)
                failures = 0
            except Exception:  # the database is down, say: keep the task alive
                failures += 1
                log.exception("worker %s: a round failed (%d in a row)", self.owner, failures)
            if handled >= self._batch_size:
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
            limit=self._batch_size,
            now=claimed_at,
            lease=self._lease,
        )
        if not deliveries:
            return 0
        # Past half the lease, the rest of the batch is left alone: once the lease runs
        # out another worker sends it, and a message we sent then would go twice. Giving
        # way to customers can make a batch slower than a short lease.
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
                    log.info("worker %s: leaving %d messages of a slow batch to the next round",
                             self.owner, len(deliveries) - n)
                    break
                if is_webhook(delivery.kind):
                    await self._settle(delivery, await self._call_webhook(delivery))
                    continue
                if delivery.kind == VERIFY and outage is None:
                    outage = await self._send_verification(delivery, done)
                    continue
                # Once the mail server is unreachable, the rest of the batch would only
                # wait for the same timeout: they share the outcome and retry later.
                error = outage or await self._send(delivery)
                if isinstance(error, ServerUnavailable):
                    outage = error
                await self._settle(delivery, error)
        finally:
            await self._mailer.close()
        return len(deliveries)

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
        others = batch.deliveries[1:]
        error = await self._send(delivery, gathered=[d.record for d in others])
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
                    gathered: list[RequestRecord] | None = None) -> DeliveryError | None:
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
                gathered=gathered or (),
            )
            await self._mailer.send(outgoing)
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
            await webhook.deliver(
                settings.webhook_url,
                settings.webhook_secret or settings.secret_key,
                ticket,
                delivery_id=delivery.message_id,
            )
        except webhook.WebhookError as exc:
            if exc.permanent:
                return PermanentFailure(str(exc))
            return TemporaryFailure(str(exc))
        except Exception as exc:  # a bug must not stop the other messages
            if not isinstance(exc, SettingsError):
                log.exception("webhook %s failed unexpectedly", delivery.message_id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}")
        return None

    async def _settle(self, delivery: Delivery, error: DeliveryError | None) -> None:
        at = self._clock()
        if error is None:
            done = await asyncio.to_thread(self._store.mark_sent, delivery.id, self.owner, at)
            if not done:
                # The lease ran out and another worker took the message over; it
                # will send it again, with the same Message-ID.
                log.warning("%s was sent but its lease had been taken over", delivery.message_id)
            return
        if error.permanent or delivery.attempts >= self._max_attempts:
            reason = error.reason if error.permanent else (
                f"gave up after {delivery.attempts} tries: {error.reason}"
            )
            log.warning("%s failed: %s", delivery.message_id, reason)
            await asyncio.to_thread(self._store.mark_failed, delivery.id, self.owner, reason, at)
            return
        retry_at = at + retry_delay(delivery.attempts, self._retry_base, self._retry_cap)
        log.info("%s: %s; next try at %s", delivery.message_id, error.reason, retry_at)
        await asyncio.to_thread(
            self._store.mark_retry, delivery.id, self.owner, error.reason, at, retry_at
        )

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
