"""The outbox: stable Message-IDs, leases that keep two workers apart, retries and failures."""

from __future__ import annotations

import datetime as dt

from delivery_support import T0, new_request

from form_service.outbox import message_id_for
from form_service.store import Store

LEASE = dt.timedelta(minutes=5)


def test_message_id_is_derived_from_the_reference(store: Store) -> None:
    """Message-IDs are <reference.kind@shop domain>, fixed when the message is queued."""
    record, _ = store.create_request(new_request())
    store.verify(record.reference, T0)
    assert [m.message_id for m in store.messages(record.reference)] == [
        message_id_for(record.reference, kind, "pulkstenu-outlets.lv")
        for kind in ("verify", "ticket", "ack")
    ]
    assert message_id_for("PO-7K3M-9QXD", "verify", "pulkstenu-outlets.lv") == (
        "<PO-7K3M-9QXD.verify@pulkstenu-outlets.lv>"
    )


def test_a_leased_message_is_not_claimed_again(store: Store) -> None:
    """While one worker holds the lease, another claims nothing; the claim carries the record."""
    record, _ = store.create_request(new_request())
    [delivery] = store.claim_messages("a", limit=10, now=T0, lease=LEASE)
    assert (delivery.kind, delivery.attempts, delivery.record) == ("verify", 0, record)
    assert store.claim_messages("b", limit=10, now=T0 + dt.timedelta(minutes=4), lease=LEASE) == []
    assert store.mark_sent(delivery.id, "a", T0 + dt.timedelta(seconds=1))
    assert store.claim_messages("b", limit=10, now=T0 + dt.timedelta(hours=1), lease=LEASE) == []
    [state] = store.messages(record.reference)
    assert (state.status, state.sent_at) == ("sent", T0 + dt.timedelta(seconds=1))


def test_an_expired_lease_is_taken_over(store: Store) -> None:
    """A dead worker's lease runs out; another takes over and the dead one cannot finish."""
    record, _ = store.create_request(new_request())
    [dead] = store.claim_messages("dead", limit=10, now=T0, lease=LEASE)
    assert store.start_send(dead.id, "dead", now=T0, lease=LEASE) == 1
    later = T0 + LEASE + dt.timedelta(seconds=1)
    [alive] = store.claim_messages("alive", limit=10, now=later, lease=LEASE)
    assert alive.id == dead.id and alive.attempts == 1  # the dead worker's interrupted try
    assert alive.message_id == dead.message_id
    assert not store.mark_sent(dead.id, "dead", later)
    assert store.mark_sent(alive.id, "alive", later)
    assert not store.mark_failed(alive.id, "alive", "late", later)
    assert [e.kind for e in store.events(record.reference)] == ["created", "mail_sent"]


def test_a_retry_waits_for_its_time(store: Store) -> None:
    """A message put back for retry is not claimed before its next attempt time."""
    record, _ = store.create_request(new_request())
    [delivery] = store.claim_messages("a", limit=10, now=T0, lease=LEASE)
    assert store.start_send(delivery.id, "a", now=T0, lease=LEASE) == 1
    retry_at = T0 + dt.timedelta(minutes=3)
    assert store.mark_retry(delivery.id, "a", "451 try later", T0, retry_at)
    assert store.claim_messages("a", limit=10, now=retry_at - dt.timedelta(seconds=1),
                                lease=LEASE) == []
    [again] = store.claim_messages("b", limit=10, now=retry_at, lease=LEASE)
    assert again.attempts == 1
    [state] = store.messages(record.reference)
    assert (state.status, state.last_error) == ("pending", "451 try later")


def test_a_failed_message_is_never_claimed(store: Store) -> None:
    """A message marked failed keeps its reason and stays out of every later claim."""
    record, _ = store.create_request(new_request())
    [delivery] = store.claim_messages("a", limit=10, now=T0, lease=LEASE)
    assert store.mark_failed(delivery.id, "a", "550 no such mailbox", T0)
    assert store.claim_messages("a", limit=10, now=T0 + dt.timedelta(days=9), lease=LEASE) == []
    [state] = store.messages(record.reference)
    assert (state.status, state.last_error) == ("failed", "550 no such mailbox")
    assert [e.kind for e in store.events(record.reference)] == ["created", "mail_failed"]


def test_claims_come_in_batches_oldest_first(store: Store) -> None:
    """A claim takes at most `limit` messages, the longest-waiting first."""
    references = [
        store.create_request(new_request(submitted_at=T0 + dt.timedelta(seconds=i)))[0].reference
        for i in range(5)
    ]
    now = T0 + dt.timedelta(minutes=1)
    first = store.claim_messages("a", limit=3, now=now, lease=LEASE)
    second = store.claim_messages("b", limit=3, now=now, lease=LEASE)
    assert [d.record.reference for d in first + second] == references


def test_messages_of_verified_requests_go_before_verification_emails(store: Store) -> None:
    """A backlog of verification e-mails never delays a verified request's ticket and receipt."""
    waiting = [
        store.create_request(new_request(submitted_at=T0 + dt.timedelta(seconds=i)))[0]
        for i in range(5)
    ]
    store.claim_messages("a", limit=1, now=T0 + dt.timedelta(seconds=10), lease=LEASE)  # the first
    store.verify(waiting[0].reference, T0 + dt.timedelta(seconds=20))
    claimed = store.claim_messages("b", limit=3, now=T0 + dt.timedelta(minutes=1), lease=LEASE)
    assert [(d.kind, d.record.reference) for d in claimed] == [
        ("ticket", waiting[0].reference), ("ack", waiting[0].reference),
        ("verify", waiting[1].reference),
    ]


def test_a_claim_is_not_a_try_only_a_started_send_is(store: Store) -> None:
    """Workers killed after claiming, again and again, use up none of a message's tries:
    a try is counted when its send starts (or a crash interrupts that very send)."""
    record, _ = store.create_request(new_request())
    now = T0
    for n in range(10):  # ten workers claim the message and die before sending it
        [claimed] = store.claim_messages(f"dead{n}", limit=10, now=now, lease=LEASE)
        now += LEASE + dt.timedelta(seconds=1)
    assert claimed.attempts == 0
    [state] = store.messages(record.reference)
    assert state.attempts == 0
    [last] = store.claim_messages("alive", limit=10, now=now, lease=LEASE)
    assert store.start_send(last.id, "alive", now=now, lease=LEASE) == 1
    assert store.messages(record.reference)[0].attempts == 1


def test_a_send_starts_only_under_the_workers_own_lease(store: Store) -> None:
    """A worker whose lease was taken over cannot start the send: it puts the message down.
    Starting renews the lease for a whole send, so a batch's later message is safe too."""
    record, _ = store.create_request(new_request())
    [slow] = store.claim_messages("slow", limit=10, now=T0, lease=LEASE)
    later = T0 + LEASE + dt.timedelta(seconds=1)
    [fast] = store.claim_messages("fast", limit=10, now=later, lease=LEASE)
    assert store.start_send(slow.id, "slow", now=later, lease=LEASE) is None
    assert store.start_send(fast.id, "fast", now=later, lease=LEASE) == 1
    # Renewed from `later`: nobody else may claim it until later + LEASE.
    assert store.claim_messages("third", limit=10, now=later + LEASE - dt.timedelta(seconds=1),
                                lease=LEASE) == []
    assert store.messages(record.reference)[0].attempts == 1


def test_waiting_messages_are_woken_one_then_all(store: Store) -> None:
    """After failed tries: wake_one makes the longest-waiting message due (the probe);
    hurry makes every waiting one due (the server answers again). Mail and helpdesk apart."""
    records = [store.create_request(new_request(email=f"w{i}@example.lv",
                                                submitted_at=T0 + dt.timedelta(seconds=i)))[0]
               for i in range(3)]
    claimed = store.claim_messages("a", limit=10, now=T0 + dt.timedelta(seconds=5), lease=LEASE)
    for n, delivery in enumerate(claimed):
        store.start_send(delivery.id, "a", now=T0, lease=LEASE)
        store.mark_retry(delivery.id, "a", "421 down", T0,
                         T0 + dt.timedelta(minutes=10 + n))
    now = T0 + dt.timedelta(minutes=1)
    assert not store.wake_one_waiting(now, webhook=True)
    assert store.wake_one_waiting(now)
    [first] = store.claim_messages("b", limit=10, now=now, lease=LEASE)
    assert first.record.reference == records[0].reference
    assert store.hurry_waiting(now) == 2
    assert {d.record.reference for d in store.claim_messages("c", limit=10, now=now,
                                                              lease=LEASE)} == {
        records[1].reference, records[2].reference}
