"""The ticket as JSON to a helpdesk (POLICY_WEBHOOK_URL), signed so the receiver can trust it.

Signature header: `X-Policy-Signature: t=<unix time>,v1=<hex HMAC-SHA256>` over
"<t>.<body>", the scheme payment providers use, so a receiver can refuse old
(replayed) deliveries. `X-Policy-Delivery` carries the stable Message-ID, so a
retry after an uncertain delivery is recognisable as the same ticket.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-Policy-Signature"
DELIVERY_HEADER = "X-Policy-Delivery"


class WebhookError(Exception):
    """Raised when the helpdesk does not accept a delivery; `permanent` says whether to retry."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class SignatureError(Exception):
    """Raised by verify() when a delivery's signature is missing, wrong or too old."""


def _mac(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    return f"t={timestamp},v1={_mac(secret, timestamp, body)}"


def verify(secret: str, body: bytes, header: str, *, tolerance_seconds: int = 300) -> None:
    """What a receiver does: recompute the HMAC and refuse old or altered deliveries."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: {header!r}") from None
    if abs(time.time() - timestamp) > tolerance_seconds:
        raise SignatureError("delivery too old")
    if not hmac.compare_digest(given, _mac(secret, timestamp, body)):
        raise SignatureError("signature does not match")


def encode(ticket: dict[str, Any]) -> bytes:
    return json.dumps(ticket, ensure_ascii=False, sort_keys=True, default=str).encode("utf-8")


async def deliver(url: str, secret: str, ticket: dict[str, Any], delivery_id: str,
                  *, timeout: float = 10.0) -> None:
    import httpx2

    body = encode(ticket)
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        SIGNATURE_HEADER: sign(secret, body),
        DELIVERY_HEADER: delivery_id,
    }
    where = _where(url)
    try:
        async with httpx2.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, content=body, headers=headers)
    except httpx2.HTTPError as exc:
        raise WebhookError(f"{where}: {exc.__class__.__name__}", permanent=False) from None
    if response.status_code >= 300:
        # 4xx other than 408/429 will not change by retrying; 5xx, 408 and 429 may.
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
        raise WebhookError(f"{where} answered {response.status_code}", permanent=permanent)


def _where(url: str) -> str:
    """Scheme, host and port only: helpdesk URLs often carry a token in the path or query,
    and this text is stored as the message's last error and shown to staff."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
