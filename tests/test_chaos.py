"""Chaos in the suite (issue 14, section 5): the service killed over and over under a stream of
customers, and three instances sharing a slow mail server. Real processes, real SQLite and
PostgreSQL, a real SMTP server (tests/chaos_support.py); bench/chaos.py runs longer ones."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from chaos_support import Books, ChaosSmtp, Customers, KillRecord, judge, kill, up_services
from live_service import LiveService
from web_support import built_site

from form_service.store import Store

pytestmark = pytest.mark.slow


def test_kill_loop_loses_nothing_acknowledged_and_sends_each_ticket_once(tmp_path: Path) -> None:
    """One instance on SQLite, SIGKILLed every 2-4 s nine times while customers submit and
    confirm: every reference shown is stored, every confirmed request gets its ticket and
    acknowledgement, a copy only where the server had the message when the process died,
    nothing failed, and a message's tries are tries made, not kills survived."""
    smtp = ChaosSmtp(delay=0.05)
    smtp.start()
    live = LiveService(tmp_path / "var", built_site(), smtp.url, POLICY_OUTBOX_LEASE_SECONDS="5")
    live.start()
    books = Books(live.database_url)
    kills = KillRecord()
    customers = Customers(3, lambda: up_services([live]), smtp, mail_wait=20, retry_for=20)
    rng = random.Random(14)  # noqa: S311 (the kills' timing: no secret)
    try:
        customers.start()
        time.sleep(3)
        for _ in range(9):
            time.sleep(rng.uniform(2, 4))
            kill(live, smtp, books, kills)
            live.start()
        customers.finish(timeout=45)
        drain = books.wait_drained(limit=40)
        time.sleep(1)  # a copy, if any, would arrive now
        outcome = judge(customers.tally, smtp, books, kills, drain)
    finally:
        customers.stop.set()
        live.stop()
        books.close()
        smtp.stop()

    report = (f"{outcome.acknowledged} acknowledged, {outcome.confirmed_seen} confirmed, "
              f"{kills.kills} kills, copies {dict(outcome.copies)}, explained "
              f"{dict(outcome.explained)}, attempts over {outcome.attempts_over}, "
              f"unexchanged {outcome.unexchanged}, max attempts {outcome.max_attempts}")
    assert outcome.acknowledged >= 20 and outcome.confirmed_seen >= 10, report
    assert outcome.lost == [], report
    assert outcome.confirmed_unstored == [], report
    assert drain is not None, f"{outcome.pending} messages still pending; {report}"
    assert outcome.missing == [], report
    assert outcome.tickets == outcome.acks == outcome.verified, report
    assert outcome.failed == [], report
    # Every copy has the same Message-ID as the first, and was sent before a kill that
    # found it accepted by the server but not yet recorded as sent.
    assert outcome.new_ids == 0, report
    assert outcome.unexplained == {}, report
    # A try is counted when it is made: a row's tries are the server's exchanges for it,
    # plus the kills that caught it leased; and all kills together interrupt at most one
    # send each (one worker, one message at a time).
    assert outcome.attempts_over == {}, report
    assert outcome.unexchanged <= kills.kills, report


@pytest.mark.postgres
def test_three_instances_with_a_short_lease_send_each_message_once(
    tmp_path: Path, postgres_url: str
) -> None:
    """Three instances on PostgreSQL, a 5 s lease, a mail server taking 1 s per message (one
    at a time), 16 customers confirming: every ticket and every acknowledgement arrives
    exactly once, and every verification e-mail too; no crash, so no copy is excusable."""
    setup = Store(postgres_url)
    setup.migrate()
    setup.close()
    # One message at a time, 1 s each: three workers queue at the server, so a send can
    # take three times as long as the server's own second.
    smtp = ChaosSmtp(delay=1.0, serial=True)
    smtp.start()
    services = [LiveService(tmp_path / f"var{i}", built_site(), smtp.url,
                            POLICY_DATABASE_URL=postgres_url, POLICY_OUTBOX_LEASE_SECONDS="5")
                for i in range(3)]
    books = Books(postgres_url)
    requests = 16  # 48 messages: 48 s of the server's time at least
    customers = Customers(8, lambda: up_services(services), smtp, journeys=requests,
                          mail_wait=60, retry_for=20)
    try:
        for service in services:
            service.start()
        customers.start()
        customers.join(timeout=80)
        drain = books.wait_drained(limit=40)
        time.sleep(2)  # a second copy, if any, would arrive now
        outcome = judge(customers.tally, smtp, books, None, drain)
    finally:
        customers.stop.set()
        for service in services:
            service.stop()
        books.close()
        smtp.stop()

    report = (f"{outcome.acknowledged} acknowledged, {outcome.verified} confirmed; copies: "
              f"{outcome.duplicates_of('ticket')} tickets, {outcome.duplicates_of('ack')} "
              f"acknowledgements, {outcome.duplicates_of('verify')} verification e-mails "
              f"{dict(outcome.copies)}; missing {outcome.missing}, failed {outcome.failed}")
    assert outcome.confirmed_seen >= requests * 3 // 4, report
    assert outcome.lost == [] and outcome.confirmed_unstored == [], report
    assert drain is not None, f"{outcome.pending} messages still pending; {report}"
    assert outcome.missing == [] and outcome.failed == [], report
    assert outcome.tickets == outcome.acks == outcome.verified, report
    assert outcome.duplicates == 0, report
