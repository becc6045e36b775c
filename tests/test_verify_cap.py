"""The cap on verification e-mails: no inbox flooded through the form, nobody locked out."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import replace

import pytest
from delivery_support import T0, Clock, drain, new_request
from smtp_server import SmtpServer

from form_service.delivery.worker import Worker
from form_service.settings import Settings
from form_service.store import Store
from form_service.tokens import read_token


@pytest.fixture
def smtp_settings(settings: Settings, smtp_server: SmtpServer) -> Settings:
    return replace(settings, smtp_url=smtp_server.url, verify_mails_per_day=3)


def _links(settings: Settings, server: SmtpServer, n: int) -> list[str]:
    """The references whose links the n-th e-mail carries."""
    part = server.messages[n].message.get_body(("plain",))
    assert part is not None
    tokens = re.findall(r"/request/verify/(\S+)", str(part.get_content()))
    return [read_token(settings.secret_key, "verify", t, 3600)["ref"] for t in tokens]


def test_requests_waiting_for_one_address_share_one_e_mail(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """Five requests made with one mailbox (in any case, with any +tag) go out as one
    e-mail listing all five links, newest first; each message is then sent."""
    emails = ["anna@example.lv", "ANNA@example.lv", "anna+a@example.lv", "Anna+b@Example.LV",
              "anna@example.lv"]
    refs = [store.create_request(new_request(email=e, submitted_at=T0 + dt.timedelta(
        seconds=i)))[0].reference for i, e in enumerate(emails)]
    worker = Worker(store, smtp_settings, owner="w", clock=Clock(T0 + dt.timedelta(minutes=1)))
    drain(worker)
    assert len(smtp_server.messages) == 1
    assert _links(smtp_settings, smtp_server, 0) == [refs[0], *reversed(refs[1:])]
    assert all(store.messages(r)[0].status == "sent" for r in refs)


def test_at_most_n_verification_e_mails_a_day_then_held_not_refused(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """After 3 e-mails in a day to one mailbox, the next request is stored and held (not a
    try, not failed) until the day's count allows; then one e-mail carries every request
    that waited, the mailbox owner's own among them."""
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    for _ in range(3):
        store.create_request(new_request(email="anna@example.lv", submitted_at=clock()))
        drain(worker)
        clock.advance(hours=1)
    assert len(smtp_server.messages) == 3
    held = [store.create_request(new_request(email="anna@example.lv", submitted_at=clock()))[0]
            for _ in range(2)]
    clock.advance(minutes=1)
    own, _ = store.create_request(new_request(email="Anna@example.lv", submitted_at=clock()))
    drain(worker)
    assert len(smtp_server.messages) == 3
    [state] = store.messages(held[0].reference)
    assert (state.status, state.attempts) == ("pending", 0)
    # The first of the day's three e-mails went at T0: a slot frees at T0 + 24 h.
    assert state.next_attempt_at == T0 + dt.timedelta(days=1)
    clock.now = T0 + dt.timedelta(days=1, seconds=1)
    drain(worker)
    assert len(smtp_server.messages) == 4
    assert set(_links(smtp_settings, smtp_server, 3)) == {own.reference,
                                                          *(r.reference for r in held)}
    assert [store.messages(r.reference)[0].status for r in (*held, own)] == ["sent"] * 3


def test_another_mailbox_is_not_held_by_someone_elses_cap(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """The cap is per mailbox: a flood for one address delays nobody else's e-mail."""
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    for _ in range(4):
        store.create_request(new_request(email="victim@example.lv", submitted_at=clock()))
        drain(worker)
        clock.advance(minutes=1)
    store.create_request(new_request(email="janis@example.lv", submitted_at=clock()))
    drain(worker)
    assert [m.recipients for m in smtp_server.messages].count(("janis@example.lv",)) == 1
    assert len(smtp_server.messages) == 4


def test_a_failed_send_gives_its_slot_back(
    store: Store, smtp_settings: Settings, smtp_server: SmtpServer
) -> None:
    """An e-mail the server did not take does not count against the mailbox's cap, and the
    requests it was to carry wait for the next try."""
    clock = Clock(T0)
    worker = Worker(store, smtp_settings, owner="w", clock=clock)
    refs = [store.create_request(new_request(email="anna@example.lv", submitted_at=clock()))[0]
            .reference for _ in range(2)]
    smtp_server.stop()
    drain(worker)
    smtp_server.start()
    for _ in range(3):
        clock.advance(minutes=10)  # past the back-off
        store.create_request(new_request(email="anna@example.lv", submitted_at=clock()))
        drain(worker)
    # Three e-mails went (the failed one did not count), the first carrying both early ones.
    assert len(smtp_server.messages) == 3
    assert set(refs) <= set(_links(smtp_settings, smtp_server, 0))


@pytest.mark.postgres
def test_two_workers_at_once_keep_the_cap(postgres_url: str, smtp_settings: Settings,
                                          smtp_server: SmtpServer) -> None:
    """Instances deciding at the same moment for one mailbox (PostgreSQL: side by side, not
    queued as on SQLite) together send at most 3 e-mails, no link twice."""
    store = Store(postgres_url)
    store.migrate()
    try:
        for i in range(12):
            store.create_request(new_request(email=f"anna+{i}@example.lv",
                                             submitted_at=T0 + dt.timedelta(seconds=i)))
        workers = [Worker(store, smtp_settings, owner=f"w{n}", batch_size=1,
                          clock=Clock(T0 + dt.timedelta(minutes=1))) for n in range(4)]
        threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert 1 <= len(smtp_server.messages) <= 3
        carried = [ref for n in range(len(smtp_server.messages))
                   for ref in _links(smtp_settings, smtp_server, n)]
        assert len(carried) == len(set(carried))  # no request's link sent twice
    finally:
        store.close()


def test_the_cap_is_a_setting(tmp_path: object) -> None:
    """POLICY_VERIFY_MAILS_PER_DAY sets N; 0 or words are refused with the variable's name."""
    from form_service.settings import SettingsError, load_settings

    base = {"POLICY_SECRET_KEY": "x" * 8 + "abcdefghijklmnopqrstuvwxyz0123456789",
            "POLICY_VAR_DIR": "/nonexistent-var"}
    assert load_settings({**base, "POLICY_VERIFY_MAILS_PER_DAY": "5"}).verify_mails_per_day == 5
    for bad in ("0", "many"):
        with pytest.raises(SettingsError, match="POLICY_VERIFY_MAILS_PER_DAY"):
            load_settings({**base, "POLICY_VERIFY_MAILS_PER_DAY": bad})

