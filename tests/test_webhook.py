"""The helpdesk webhook: signed JSON to a real HTTP server on loopback, sent by the worker."""

from __future__ import annotations

import asyncio
import datetime as dt
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from delivery_support import SHA, T0, new_request

from form_service.delivery.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    WebhookError,
    deliver,
    sign,
    verify,
)
from form_service.delivery.worker import Worker
from form_service.outbox import MessageState
from form_service.settings import Settings
from form_service.store import Store

SECRET = "test-webhook-secret"  # noqa: S105 -- a test key, not a credential


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append({"headers": dict(self.headers), "body": body})
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval: shutdown() waits for it at every teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def test_delivery_is_signed_and_verifiable(receiver: tuple[str, type[_Receiver]]) -> None:
    """The receiver gets the JSON, the delivery id and a signature it can verify."""
    url, handler = receiver
    ticket = {"reference": "PO-7K3M-9QXD", "type": "erasure", "name": "Jānis Bērziņš"}
    asyncio.run(deliver(url, SECRET, ticket, "<PO-7K3M-9QXD.ticket@example.lv>"))
    (got,) = handler.received
    assert json.loads(got["body"]) == ticket
    assert got["headers"][DELIVERY_HEADER] == "<PO-7K3M-9QXD.ticket@example.lv>"
    verify(SECRET, got["body"], got["headers"][SIGNATURE_HEADER])


def test_altered_body_or_wrong_secret_is_refused() -> None:
    """A receiver refuses a body changed in transit or signed with another secret."""
    body = b'{"reference": "PO-7K3M-9QXD"}'
    header = sign(SECRET, body)
    with pytest.raises(SignatureError):
        verify(SECRET, body.replace(b"7K3M", b"7K3N"), header)
    with pytest.raises(SignatureError):
        verify("another-secret", body, header)


def test_old_delivery_is_refused() -> None:
    """A replayed delivery older than the tolerance is refused."""
    body = b"{}"
    with pytest.raises(SignatureError, match="too old"):
        verify(SECRET, body, sign(SECRET, body, timestamp=1_000_000_000))


@pytest.mark.parametrize(("status", "permanent"), [(400, True), (410, True), (429, False),
                                                    (500, False), (503, False)])
def test_refusals_say_whether_to_retry(receiver: tuple[str, type[_Receiver]], status: int,
                                       permanent: bool) -> None:
    """A 4xx is permanent (except 408/429); a 5xx is retried later."""
    url, handler = receiver
    handler.status = status
    with pytest.raises(WebhookError) as caught:
        asyncio.run(deliver(url, SECRET, {"x": 1}, "<id>"))
    assert caught.value.permanent is permanent


def test_unreachable_helpdesk_is_temporary() -> None:
    """A refused connection is retried later, not dropped."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(WebhookError) as caught:
        asyncio.run(deliver(f"http://127.0.0.1:{port}/", SECRET, {}, "<id>", timeout=2))
    assert caught.value.permanent is False


# -- the worker delivers "webhook" rows ---------------------------------------


@pytest.fixture
def hook_store(database_url: str) -> Iterator[Store]:
    """A store that queues a webhook call with every verification (POLICY_WEBHOOK_URL set)."""
    active = Store(database_url, webhook=True)
    active.migrate()
    yield active
    active.close()


def _worker(store: Store, settings: Settings, url: str, clock: list[dt.datetime],
            secret: str | None = SECRET) -> Worker:
    hooked = replace(settings, webhook_url=url, webhook_secret=secret)
    return Worker(store, hooked, owner="w", clock=lambda: clock[0])


def _drain(worker: Worker) -> None:
    async def rounds() -> None:
        while await worker.run_once():
            pass

    asyncio.run(rounds())


def _verified(store: Store) -> str:
    record, _ = store.create_request(new_request())
    store.verify(record.reference, T0 + dt.timedelta(minutes=5))
    return record.reference


def _webhook_state(store: Store, reference: str) -> MessageState:
    [state] = [m for m in store.messages(reference) if m.kind == "webhook"]
    return state


def test_settings_decide_whether_verification_queues_a_webhook(database_url: str,
                                                               settings: Settings) -> None:
    """With POLICY_WEBHOOK_URL set, verifying queues ticket, ack and webhook in one go."""
    for url, kinds in ((None, ["verify", "ticket", "ack"]),
                       ("http://127.0.0.1:9/hook", ["verify", "ticket", "ack", "webhook"])):
        store = Store.from_settings(replace(settings, database_url=database_url, webhook_url=url))
        store.migrate()
        reference = _verified(store)
        assert [m.kind for m in store.messages(reference)] == kinds
        store.close()


def test_webhook_is_delivered_once_and_signed(hook_store: Store, settings: Settings,
                                              receiver: tuple[str, type[_Receiver]]) -> None:
    """After verification the helpdesk gets the ticket once, signed, with the Message-ID as id."""
    url, handler = receiver
    reference = _verified(hook_store)
    worker = _worker(hook_store, settings, url, [T0 + dt.timedelta(minutes=6)])
    _drain(worker)
    _drain(worker)
    (got,) = handler.received
    verify(SECRET, got["body"], got["headers"][SIGNATURE_HEADER])
    assert got["headers"][DELIVERY_HEADER] == f"<{reference}.webhook@pulkstenu-outlets.lv>"
    ticket = json.loads(got["body"])
    assert (ticket["reference"], ticket["type"], ticket["article"]) == (reference, "access",
                                                                        "Art. 15")
    assert ticket["requester"]["email"] == "janis@example.lv"
    assert ticket["policy"]["sha256"] == SHA
    assert ticket["policy"]["url"] == "https://privatums.pulkstenu-outlets.lv/versions/1.0/"
    assert ticket["due_at"] == "2027-01-04"
    state = _webhook_state(hook_store, reference)
    assert (state.status, state.attempts) == ("sent", 1)
    assert "webhook_sent" in [e.kind for e in hook_store.events(reference)]


def test_webhook_is_signed_with_the_secret_key_by_default(
    hook_store: Store, settings: Settings, receiver: tuple[str, type[_Receiver]]
) -> None:
    """Without POLICY_WEBHOOK_SECRET the signature uses POLICY_SECRET_KEY."""
    url, handler = receiver
    _verified(hook_store)
    _drain(_worker(hook_store, settings, url, [T0 + dt.timedelta(minutes=6)], secret=None))
    (got,) = handler.received
    verify(settings.secret_key, got["body"], got["headers"][SIGNATURE_HEADER])


def test_webhook_is_retried_after_a_500(hook_store: Store, settings: Settings,
                                        receiver: tuple[str, type[_Receiver]]) -> None:
    """A 500 leaves the call pending with back-off; the retry carries the same delivery id."""
    url, handler = receiver
    handler.status = 500
    reference = _verified(hook_store)
    clock = [T0 + dt.timedelta(minutes=6)]
    worker = _worker(hook_store, settings, url, clock)
    _drain(worker)
    state = _webhook_state(hook_store, reference)
    assert (state.status, state.attempts) == ("pending", 1)
    assert state.next_attempt_at == clock[0] + dt.timedelta(minutes=1)
    assert state.last_error and "500" in state.last_error
    handler.status = 200
    clock[0] += dt.timedelta(minutes=1)
    _drain(worker)
    first, second = handler.received
    assert first["headers"][DELIVERY_HEADER] == second["headers"][DELIVERY_HEADER]
    assert _webhook_state(hook_store, reference).status == "sent"


def test_webhook_fails_at_once_on_a_400(hook_store: Store, settings: Settings,
                                        receiver: tuple[str, type[_Receiver]]) -> None:
    """A 400 will not change by retrying: the call is failed at once and shown to staff."""
    url, handler = receiver
    handler.status = 400
    reference = _verified(hook_store)
    _drain(_worker(hook_store, settings, url, [T0 + dt.timedelta(minutes=6)]))
    state = _webhook_state(hook_store, reference)
    assert (state.status, state.attempts) == ("failed", 1)
    assert state.last_error and "400" in state.last_error
    assert [(ref, m.kind) for ref, m in hook_store.failed_messages()] == [(reference, "webhook")]
    assert "webhook_failed" in [e.kind for e in hook_store.events(reference)]
    # The e-mails are not held up by the helpdesk's refusal.
    assert {m.kind: m.status for m in hook_store.messages(reference)}["ticket"] == "sent"


def test_errors_never_quote_the_urls_token(receiver: tuple[str, type[_Receiver]]) -> None:
    """A refusal names the helpdesk's host, never the path or query that may hold its token."""
    url, handler = receiver
    handler.status = 503
    with pytest.raises(WebhookError) as caught:
        asyncio.run(deliver(f"{url}/t0ken?key=s3cret", SECRET, {}, "<id>"))
    assert "t0ken" not in str(caught.value) and "s3cret" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value) and "503" in str(caught.value)


def test_a_reply_and_a_withdrawal_reach_the_helpdesk_naming_the_ticket(
        hook_store: Store, settings: Settings, receiver: tuple[str, type[_Receiver]]) -> None:
    """The worker POSTs follow-ups signed like the ticket, each naming the ticket's Message-ID,
    and the staff e-mails go out threaded under the ticket (the Maildir here)."""
    from form_service.followup import FollowUp

    url, handler = receiver
    reference = _verified(hook_store)
    follow = FollowUp(hook_store)
    at = T0 + dt.timedelta(hours=1)
    follow.ask(reference, "Which order?", at)
    follow.reply(reference, "A-1042, please.", at)
    follow.withdraw(reference, at + dt.timedelta(minutes=1))
    _drain(_worker(hook_store, settings, url, [at + dt.timedelta(minutes=2)]))
    bodies = {json.loads(r["body"]).get("event", "ticket"): r for r in handler.received}
    assert set(bodies) == {"ticket", "reply", "withdrawn"}
    ticket_id = f"<{reference}.ticket@pulkstenu-outlets.lv>"
    for event in ("reply", "withdrawn"):
        got = bodies[event]
        verify(SECRET, got["body"], got["headers"][SIGNATURE_HEADER])
        body = json.loads(got["body"])
        assert body["in_reply_to"] == ticket_id and body["reference"] == reference
        delivery = f"<{reference}.webhook_{event}@pulkstenu-outlets.lv>"
        assert got["headers"][DELIVERY_HEADER] == delivery
    assert json.loads(bodies["reply"]["body"])["text"] == "A-1042, please."
    assert {m.kind: m.status for m in hook_store.messages(reference)}["reply"] == "sent"
