"""Defences on every request: security headers, the body limit, CSRF and the origin check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from form_service.settings import Settings
from form_service.tokens import TokenError, make_token, read_token
from form_service.web.errors import BodyTooLarge, CrossSiteRequest, CsrfFailed

if TYPE_CHECKING:
    from form_service.web.pages import Pages

# The form is a few kilobytes even with every field at its limit (5000 characters
# of details are at most 20 KB of UTF-8, percent-encoded up to 3x that).
MAX_BODY_BYTES = 64 * 1024

CSRF_FIELD = "csrf_token"
CSRF_MAX_AGE_SECONDS = 24 * 3600

# Content types that are text and so must name their charset (a browser
# guessing the encoding is how UTF-7 style attacks worked).
_TEXTUAL = ("text/", "application/json", "application/xml", "application/javascript")


def content_security_policy(script_hashes: tuple[str, ...]) -> str:
    scripts = " ".join(("'self'", *script_hashes))
    return "; ".join(
        (
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self'",
            # Material's stylesheet draws its icons from data: URIs.
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        )
    )


def security_headers(settings: Settings, script_hashes: tuple[str, ...]) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(script_hashes),
        "X-Content-Type-Options": "nosniff",
        # Same-origin: tokens in our URLs never travel to another site.
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }
    if settings.https:
        # RFC 6797: only over https, where the browser can trust the header.
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


class SecurityHeaders:
    """Adds the security headers, and a charset to text types, on every HTTP response."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str]) -> None:
        self.app = app
        self.headers = dict(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
                content_type = headers.get("content-type", "")
                is_text = content_type.startswith(_TEXTUAL) or content_type.endswith("+xml")
                if is_text and "charset=" not in content_type.lower():
                    headers["content-type"] = f"{content_type}; charset=utf-8"
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuses bodies over `max_bytes`: at once from Content-Length, else while streaming.

    A client may lie in Content-Length or send chunks without one, so the
    bytes are also counted as they arrive; going over raises BodyTooLarge
    inside the handler that reads them, which the app turns into the 413 page.
    """

    def __init__(self, app: ASGIApp, pages: Pages, max_bytes: int = MAX_BODY_BYTES,
                 uploads: tuple[re.Pattern[str], int] | None = None) -> None:
        self.app = app
        self.pages = pages
        self.max_bytes = max_bytes
        # (paths, limit): the one kind of address that takes files (the console's answer
        # upload, which streams them into sealed files) gets its own, larger limit.
        self.uploads = uploads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        if self.uploads is not None and self.uploads[0].fullmatch(scope.get("path", "")):
            limit = self.uploads[1]
        declared = Headers(scope=scope).get("content-length")
        valid = declared is None or (declared.isascii() and declared.isdigit())
        if not valid or (declared is not None and int(declared) > limit):
            status = 413 if valid else 400
            key = "form_error_too_large" if status == 413 else "form_error_bad_request"
            response = self.pages.error(scope, status, key, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge()
            return message

        await self.app(scope, counting_receive, send)


# --- CSRF: a signed double-submit token (OWASP CSRF cheat sheet) -------------------
#
# The cookie holds a random value; the form's hidden field holds that value
# signed with the service's key. A POST must bring both, matching, and the
# signature must be ours and younger than a day. A cross-site attacker can
# neither read the cookie nor sign a field for it.


def csrf_cookie_name(settings: Settings) -> str:
    # RFC 6265bis §4.1.3.2: "__Host-" cookies are only accepted with Secure,
    # Path=/ and no Domain, so a sibling subdomain cannot plant one.
    return "__Host-csrf" if settings.https else "csrf"


def _cookie_mac(settings: Settings, nonce: str) -> str:
    digest = hmac.new(settings.secret_key.encode(), f"csrf-cookie:{nonce}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _issued_cookie(settings: Settings, value: str) -> bool:
    """True for a cookie value this service made: a nonce and our MAC of it.

    A value an attacker chose (planted from a sibling subdomain over http, or
    set by script) is not adopted: the form is then signed for a fresh cookie
    of ours, and the planted one cannot be used to forge a matching field.
    """
    nonce, _, mac = value.partition(".")
    if not (40 <= len(nonce) <= 64 and len(mac) == 22):
        return False
    return hmac.compare_digest(mac, _cookie_mac(settings, nonce))


def csrf_cookie_value(request: Request, settings: Settings) -> str:
    """The visitor's CSRF cookie if we issued it, else a fresh one."""
    value = request.cookies.get(csrf_cookie_name(settings), "")
    if _issued_cookie(settings, value):
        return value
    return new_csrf_cookie(settings)


def new_csrf_cookie(settings: Settings) -> str:
    """A fresh CSRF cookie value: a random nonce and our MAC of it."""
    nonce = secrets.token_urlsafe(32)
    return f"{nonce}.{_cookie_mac(settings, nonce)}"


def csrf_field_value(settings: Settings, cookie_value: str) -> str:
    return make_token(settings.secret_key, "csrf", {"c": cookie_value})


def set_csrf_cookie(response: Response, settings: Settings, cookie_value: str) -> None:
    response.set_cookie(
        csrf_cookie_name(settings),
        cookie_value,
        path="/",
        secure=settings.https,
        httponly=True,
        # Lax, not Strict: a customer arriving from a link keeps the cookie of the
        # form they already have open; cross-site POSTs never carry it.
        samesite="lax",
    )


def check_csrf(request: Request, settings: Settings, field_values: list[str], *,
               lang: str | None = None, key: str | None = None) -> None:
    """The form's CSRF field (sent exactly once) must be our signature of our cookie.

    `lang` and `key`: the language and text of the refusal, where the URL does
    not say them (the confirmation link's page).
    """
    cookie = request.cookies.get(csrf_cookie_name(settings))
    if not cookie or len(field_values) != 1 or not field_values[0]:
        raise CsrfFailed("missing or sent twice", lang=lang, key=key)
    if not _issued_cookie(settings, cookie):
        raise CsrfFailed("a cookie we did not issue", lang=lang, key=key)
    field_value = field_values[0]
    try:
        payload = read_token(settings.secret_key, "csrf", field_value, CSRF_MAX_AGE_SECONDS)
    except TokenError:
        raise CsrfFailed("bad signature or expired", lang=lang, key=key) from None
    signed = payload.get("c")
    if not isinstance(signed, str) or not hmac.compare_digest(signed, cookie):
        raise CsrfFailed("cookie and field differ", lang=lang, key=key)


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an http(s) URL or Origin, the port made explicit (RFC 6454 §4)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


def check_same_origin(request: Request, settings: Settings) -> None:
    """Refuses a state-changing request that a browser does not vouch for as our own.

    `Origin` (RFC 6454, sent by every current browser on a POST) must be
    exactly POLICY_BASE_URL's scheme, host and port: not the Host header,
    which whoever sends the request chooses. Fetch Metadata (`Sec-Fetch-Site`)
    naming another site is refused too. A POST that carries neither header
    did not come from a browser showing our page, and is refused.
    """
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise CrossSiteRequest(f"Sec-Fetch-Site: {fetch_site}")
    origin = request.headers.get("origin")
    if origin is None:
        if fetch_site is None:
            raise CrossSiteRequest("neither Origin nor Sec-Fetch-Site")
        return
    ours = origin_of(settings.base_url)
    if origin_of(origin) != ours or origin.rstrip("/").count("/") != 2:
        raise CrossSiteRequest(f"Origin: {origin[:100]}")
