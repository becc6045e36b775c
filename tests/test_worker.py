"""The delivery worker: each message exactly once, retried through outages, never stuck."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest
from delivery_support import T0, Clock, bulk_requests, drain, new_request
from smtp_server import SmtpServer

from form_service.delivery.worker import Worker, retry_delay
from form_service.settings import Settings
from form_service.store import Store


@pytest.fixture
def smtp_settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return replace(settings, smtp_url=smtp_server.url)


def test_a_request_is_confirmed_then_ticketed(store: Store, smtp_settings: Settings,
                                             smtp_server: SmtpServer) -> None:
    """Verify goes to the customer; after verification the ticket to staff and the ack follow."""
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    record, _ = store.create_request(new_request())
    assert drain(worker) == 1
    [verify] = smtp_server.messages
    assert verify.recipients == ("janis@example.lv",)
    store.verify(record.reference, T0 + dt.timedelta(minutes=5))
    clock.advance(minutes=5)
    assert drain(worker) == 2
    assert [m.recipients for m in smtp_server.messages[1:]] == [
        ("privacy-team@pulkstenu-outlets.lv",), ("janis@example.lv",)
    ]
    assert [m.status for m in store.messages(record.reference)] == ["sent"] * 3
    assert drain(worker) == 0


def test_maildir_is_the_default(store: Store, settings: Settings) -> None:
    """Without an SMTP server the worker delivers into the Maildir."""
    store.create_request(new_request())
    assert drain(Worker(store, settings, owner="w", clock=Clock(T0))) == 1
    assert len(list((settings.maildir / "new").iterdir())) == 1


def test_outage_then_recovery(store: Store, smtp_settings: Settings,
                              smtp_server: SmtpServer) -> None:
    """With the SMTP server down, messages wait and back off; after it returns each arrives once."""
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    references = [store.create_request(new_request(email=f"janis{i}@example.lv"))[0].reference
                  for i in range(3)]
    smtp_server.stop()
    assert drain(worker) == 3
    # One try found the server down; the rest of the batch shared its outcome, untried.
    assert sorted(store.messages(r)[0].attempts for r in references) == [0, 0, 1]
    for reference in references:
        [state] = store.messages(reference)
        assert state.status == "pending"
        assert state.next_attempt_at == T0 + dt.timedelta(minutes=1)
        assert state.last_error and str(smtp_server.port) in state.last_error
    smtp_server.start()
    assert drain(worker) == 0  # not due yet: back-off
    clock.advance(minutes=1)
    assert drain(worker) == 3
    assert Counter(smtp_server.message_ids()) == Counter(
        {f"<{r}.verify@pulkstenu-outlets.lv>": 1 for r in references}
    )


def test_rejected_recipient_fails_alone(store: Store, smtp_settings: Settings,
                                       smtp_server: SmtpServer) -> None:
    """A 550 for one recipient fails that message at once, with the reason; the others go out."""
    smtp_server.reject("gone@example.lv", 550)
    bad, _ = store.create_request(new_request(email="gone@example.lv"))
    good, _ = store.create_request(new_request(submitted_at=T0 + dt.timedelta(seconds=1)))
    assert drain(Worker(store, smtp_settings, owner="w", clock=Clock(T0 + dt.timedelta(1)))) == 2
    [failed] = store.messages(bad.reference)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.last_error and "550" in failed.last_error
    assert [m.status for m in store.messages(good.reference)] == ["sent"]


def test_temporary_refusals_are_retried_for_days_then_given_up(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """A recipient refused with 451 every time is tried for POLICY_DELIVERY_GIVE_UP_DAYS
    (5 days by default, like a mail server), never more than 30 minutes apart, then failed."""
    smtp_server.reject("full@example.lv", 451)
    bad, _ = store.create_request(new_request(email="full@example.lv"))
    good, _ = store.create_request(new_request())
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    drain(worker)
    for _ in range(4):
        clock.advance(hours=1)
        drain(worker)
    [state] = store.messages(bad.reference)
    assert state.status == "pending" and state.attempts == 5
    assert state.next_attempt_at - clock.now <= dt.timedelta(minutes=30)
    while clock.now < T0 + dt.timedelta(days=5):
        assert store.messages(bad.reference)[0].status == "pending"
        clock.advance(hours=6)
        drain(worker)
    [state] = store.messages(bad.reference)
    assert state.status == "failed"
    assert re.match(r"gave up after 5(\.\d)? days \(\d+ tries\): ", state.last_error or "")
    assert "451" in state.last_error
    assert [m.status for m in store.messages(good.reference)] == ["sent"]
    assert drain(worker) == 0


def test_a_crash_loop_uses_up_none_of_the_tries(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """Ten workers that claim a verified request's ticket and receipt and die before
    sending count no try; a single 451 afterwards is one try, and the retry delivers."""
    record, _ = store.create_request(new_request())
    store.verify(record.reference, T0)
    lease = dt.timedelta(minutes=5)
    now = T0
    for n in range(10):
        store.claim_messages(f"killed{n}", limit=20, now=now, lease=lease)
        now += lease + dt.timedelta(seconds=1)
    smtp_server.refuse_data = 1
    clock = Clock(now)
    worker = Worker(store, smtp_settings, owner="w", clock=clock, lease=lease)
    drain(worker)
    assert [m.attempts for m in store.messages(record.reference)] == [1, 1, 1]
    assert sorted(m.status for m in store.messages(record.reference)) == [
        "pending", "sent", "sent"]
    clock.advance(minutes=1)
    drain(worker)
    assert [m.status for m in store.messages(record.reference)] == ["sent"] * 3
    assert sorted(m.attempts for m in store.messages(record.reference)) == [1, 1, 2]
    assert len(smtp_server.messages) == 3


def test_a_send_slower_than_its_lease_is_not_taken_over(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """A mail server that thinks for 3 s about each message, a lease of 1 s, and a
    second worker polling all the while: the sending worker renews the lease while it
    waits for the answer, so the other never takes the message over. Each goes once."""
    references = [store.create_request(new_request(email=f"slow{i}@example.lv",
                                                   submitted_at=dt.datetime.now(dt.UTC)))
                  [0].reference for i in range(2)]
    smtp_server.data_delay = 3

    async def scenario() -> None:
        stop = asyncio.Event()
        workers = [Worker(store, smtp_settings, owner=f"w{i}", poll_interval=0.05,
                          lease=dt.timedelta(seconds=1)) for i in range(2)]
        tasks = [asyncio.create_task(w.run(stop)) for w in workers]
        began = time.monotonic()
        while len(smtp_server.messages) < 2 and time.monotonic() - began < 20:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # past a lease: a repeat would show now
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)

    asyncio.run(scenario())
    assert Counter(smtp_server.message_ids()) == Counter(
        {f"<{r}.verify@pulkstenu-outlets.lv>": 1 for r in references})
    assert [m.status for r in references for m in store.messages(r)] == ["sent", "sent"]


def test_a_slow_batch_puts_back_its_rest_and_the_next_claim_fits_the_lease(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """With 0.4 s per message and a 2 s lease, a batch stops starting sends after 1 s and
    gives the rest back at once (another worker takes them without waiting for the
    lease); the worker's next claim is only what fits in half its lease."""
    now = dt.datetime.now(dt.UTC)
    for i in range(6):
        store.create_request(new_request(email=f"first{i}@example.lv", submitted_at=now))
    smtp_server.data_delay = 0.4
    lease = dt.timedelta(seconds=2)
    slow = Worker(store, smtp_settings, owner="slow", lease=lease)
    assert asyncio.run(slow.run_once()) == 6
    sent = len(smtp_server.messages)
    assert 1 <= sent < 6
    other = Worker(store, smtp_settings, owner="other", lease=lease)
    assert asyncio.run(other.run_once()) == 6 - sent
    for i in range(6):
        store.create_request(new_request(email=f"second{i}@example.lv",
                                         submitted_at=dt.datetime.now(dt.UTC)))
    assert asyncio.run(slow.run_once()) <= 3
    assert len(set(smtp_server.message_ids())) == len(smtp_server.messages)


def test_mail_queued_in_an_outage_leaves_soon_after_the_server_returns(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """With the back-off at 10 minutes, mail queued while the server was down still
    leaves within seconds of its return: the longest-waiting message is tried every
    probe interval, and once it goes through every waiting message is due."""
    smtp_server.stop()
    references = [store.create_request(new_request(email=f"out{i}@example.lv",
                                                   submitted_at=dt.datetime.now(dt.UTC)))
                  [0].reference for i in range(5)]

    async def scenario() -> float:
        worker = Worker(store, smtp_settings, owner="w", poll_interval=0.05,
                        retry_base=dt.timedelta(minutes=10),
                        probe_every=dt.timedelta(seconds=0.5))
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        def all_waiting() -> bool:  # tried, or untried in a batch that found the outage
            return all(m.last_error for r in references for m in store.messages(r))

        while not await asyncio.to_thread(all_waiting):
            await asyncio.sleep(0.05)
        await asyncio.to_thread(smtp_server.start)
        back = time.monotonic()
        while len(smtp_server.messages) < 5 and time.monotonic() - back < 10:
            await asyncio.sleep(0.05)
        took = time.monotonic() - back
        stop.set()
        await asyncio.wait_for(task, 5)
        return took

    took = asyncio.run(scenario())
    assert Counter(smtp_server.message_ids()) == Counter(
        {f"<{r}.verify@pulkstenu-outlets.lv>": 1 for r in references})
    assert took < 5


def test_message_id_is_the_same_on_every_try(store: Store, smtp_settings: Settings,
                                            smtp_server: SmtpServer) -> None:
    """A message refused after its data was read arrives on retry with the same Message-ID."""
    record, _ = store.create_request(new_request())
    smtp_server.refuse_data = 1
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    drain(worker)
    clock.advance(minutes=1)
    drain(worker)
    [refused], [delivered] = smtp_server.refused, smtp_server.messages
    assert refused.message_id == delivered.message_id == (
        f"<{record.reference}.verify@pulkstenu-outlets.lv>"
    )


def test_a_dead_workers_lease_is_taken_over(store: Store, smtp_settings: Settings,
                                           smtp_server: SmtpServer) -> None:
    """A message claimed by a worker that died is sent by another once the lease runs out."""
    record, _ = store.create_request(new_request())
    store.claim_messages("dead", limit=10, now=T0, lease=dt.timedelta(minutes=5))
    clock = Clock(T0 + dt.timedelta(minutes=4))
    worker = Worker(store, smtp_settings, owner="alive", clock=clock)
    assert drain(worker) == 0
    clock.advance(minutes=2)
    assert drain(worker) == 1
    assert len(smtp_server.messages) == 1
    [state] = store.messages(record.reference)
    assert (state.status, state.attempts) == ("sent", 1)  # the dead worker never tried


class SlowClock(Clock):
    """Each look at the clock finds a minute gone: a batch slower than its lease."""

    def __call__(self) -> dt.datetime:
        now = self.now
        self.advance(minutes=1)
        return now


def test_a_batch_slower_than_its_lease_leaves_the_rest_to_the_next_claim(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """A worker stops sending its batch once half its lease is gone, so that a message
    taken over when the lease runs out is not sent by both: every message goes once."""
    for i in range(4):
        store.create_request(new_request(email=f"slow{i}@example.lv"))
    lease = dt.timedelta(minutes=5)
    slow = Worker(store, smtp_settings, owner="slow", lease=lease, clock=SlowClock(T0))
    assert asyncio.run(slow.run_once()) == 4
    sent_by_slow = len(smtp_server.messages)
    assert 1 <= sent_by_slow < 4
    other = Worker(store, smtp_settings, owner="other", lease=lease, clock=Clock(T0 + 2 * lease))
    assert drain(other) == 4 - sent_by_slow
    counts = Counter(smtp_server.message_ids())
    assert len(counts) == 4 and set(counts.values()) == {1}


@pytest.mark.slow
def test_four_workers_send_each_of_1000_messages_once(database_url: str, smtp_settings: Settings,
                                                      smtp_server: SmtpServer) -> None:
    """Four workers, each with its own connection pool, share 1,000 messages: each sent once."""
    setup = Store(database_url)
    setup.migrate()
    references = bulk_requests(database_url, 1000)
    stores = [Store(database_url) for _ in range(4)]
    handled = [0] * 4
    barrier = threading.Barrier(4)

    def work(i: int) -> None:
        worker = Worker(stores[i], smtp_settings, owner=f"w{i}", batch_size=25,
                        clock=Clock(T0 + dt.timedelta(seconds=1)))
        barrier.wait()
        handled[i] = drain(worker)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(handled) == 1000
    counts = Counter(smtp_server.message_ids())
    assert counts == Counter({f"<{r}.verify@pulkstenu-outlets.lv>": 1 for r in references})
    for store in [setup, *stores]:
        store.close()


def test_wake_sends_at_once(store: Store, smtp_settings: Settings,
                            smtp_server: SmtpServer) -> None:
    """After wake(), a new request's e-mail goes out at once, not at the next (here: 60 s) poll."""

    async def scenario() -> None:
        worker = Worker(store, smtp_settings, owner="w", poll_interval=60)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.2)  # the first round found nothing and sleeps
        now = dt.datetime.now(dt.UTC)  # this worker runs on the real clock
        await asyncio.to_thread(store.create_request, new_request(submitted_at=now))
        # The web layer calls wake() from the event loop or a worker thread.
        await asyncio.to_thread(worker.wake)
        for _ in range(100):
            if smtp_server.messages:
                break
            await asyncio.sleep(0.05)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert len(smtp_server.messages) == 1


def test_run_purges_stale_requests(store: Store, settings: Settings) -> None:
    """The running worker deletes unverified requests older than POLICY_UNVERIFIED_TTL_HOURS."""
    record, _ = store.create_request(new_request())
    later = Clock(T0 + dt.timedelta(hours=settings.unverified_ttl_hours + 1))

    async def scenario() -> None:
        worker = Worker(store, settings, owner="w", clock=later, poll_interval=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    assert store.get(record.reference) is None


def test_retry_delay_grows_and_is_capped() -> None:
    """Back-off is 1, 3, 9 ... minutes after each try, never more than the cap."""
    base, cap = dt.timedelta(minutes=1), dt.timedelta(minutes=30)
    delays = [retry_delay(n, base, cap) for n in range(1, 10)]
    assert delays[:3] == [base, 3 * base, 9 * base]
    assert delays == sorted(delays) and delays[-1] == cap


def test_a_settings_fault_never_fails_messages_for_good(store: Store, settings: Settings) -> None:
    """A malformed POLICY_STAFF_EMAIL keeps tickets pending for a retry after the fix."""
    record, _ = store.create_request(new_request())
    store.verify(record.reference, T0)
    broken = replace(settings, staff_email="staff at shop")
    drain(Worker(store, broken, owner="w", clock=Clock(T0)))
    states = {m.kind: m for m in store.messages(record.reference)}
    assert states["ticket"].status == "pending"
    assert "POLICY_STAFF_EMAIL" in (states["ticket"].last_error or "")
    assert states["ack"].status == "sent"


def test_run_outlives_a_database_outage(settings: Settings) -> None:
    """When the database cannot be reached, run() logs, backs off and still stops when asked."""
    gone = Store("postgresql://nobody@127.0.0.1:1/none", message_domain="example.lv")

    async def scenario() -> None:
        worker = Worker(gone, settings, owner="w", poll_interval=0.01)
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        await asyncio.sleep(0.2)
        assert not task.done()
        stop.set()
        await asyncio.wait_for(task, 5)

    asyncio.run(scenario())
    gone.close()
