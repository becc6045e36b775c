"""The helpdesk webhook: signed JSON to a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from form_service.webhook import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    SignatureError,
    WebhookError,
    deliver,
    sign,
    verify,
)

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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
