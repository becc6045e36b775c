"""Errors of the web layer, and the one place that turns them into pages.

    WebError                 a request we refuse; the customer sees a page in their language
     ├── BadRequest          400: a body our form could not have sent (not UTF-8, a file, ...)
     ├── CrossSiteRequest    403: a POST sent from another site (Origin, Sec-Fetch-Site)
     ├── CsrfFailed          403: the CSRF cookie and form field are missing, differ or expired
     ├── BodyTooLarge        413: the request body is larger than the service accepts
     ├── RateLimited         429: too many requests from one address or for one e-mail
     ├── LinkExpired         410: a genuine verification link, too old to use
     ├── LinkNotFound        404: a link that is not ours (garbage, forged, unknown reference)
     └── Unavailable         503: the database did not answer in time (web/deadline.py)

Starlette's own HTTPException (404 for unknown paths, 405, 400 for malformed
form bodies) gets the same page, and any other exception the plain 500 page:
never a traceback.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from form_service.web.pages import Pages

logger = logging.getLogger("form_service")


class WebError(Exception):
    """Base class: `status` is the HTTP status, `key` names the page's texts in form.<lang>.yml."""

    status = 400
    key = "form_error_bad_request"

    def __init__(self, detail: str = "", *, lang: str | None = None,
                 key: str | None = None) -> None:
        super().__init__(detail or self.key)
        self.lang = lang
        if key is not None:
            # The same refusal explained for another page (the confirmation link's).
            self.key = key


class BadRequest(WebError):
    """Raised when a body is not what our page sends: not UTF-8, another charset, a file."""


class CrossSiteRequest(WebError):
    """Raised when a POST carries an Origin that is not ours or `Sec-Fetch-Site: cross-site`."""

    status = 403
    key = "form_error_cross_site"


class CsrfFailed(WebError):
    """Raised when the CSRF cookie or the hidden field is missing, they differ, or it expired."""

    status = 403
    key = "form_error_csrf"


class BodyTooLarge(WebError):
    """Raised when Content-Length, or the bytes actually received, exceed the body limit."""

    status = 413
    key = "form_error_too_large"


class RateLimited(WebError):
    """Raised when a client address or an e-mail address has used up its requests."""

    status = 429
    key = "form_error_rate_limited"

    def __init__(self, retry_after: int, *, lang: str | None = None) -> None:
        super().__init__(f"retry after {retry_after} s", lang=lang)
        self.retry_after = retry_after


class LinkExpired(WebError):
    """Raised when a genuine verification link is older than POLICY_VERIFY_LINK_MAX_AGE_HOURS."""

    status = 410
    key = "form_error_link_expired"


class LinkNotFound(WebError):
    """Raised when a token in a URL is not one we signed, or names no request we hold."""

    status = 404
    key = "form_error_not_found"


class Unavailable(WebError):
    """Raised when the database does not answer within POLICY_DATABASE_TIMEOUT_SECONDS,
    or cannot be reached: the customer is asked to try again in a few minutes."""

    status = 503
    key = "form_error_unavailable"


_HTTP_KEYS = {
    404: "form_error_not_found",
    405: "form_error_method",
    413: "form_error_too_large",
}


def _pages(request: Request) -> Pages:
    pages: Pages = request.app.state.pages
    return pages


async def web_error_response(request: Request, exc: Exception) -> Response:
    """The page for a WebError (registered for WebError in the app's exception handlers)."""
    assert isinstance(exc, WebError)
    headers = {}
    params = {}
    if isinstance(exc, RateLimited):
        # RFC 9110 §10.2.3: seconds until the client may try again.
        headers["Retry-After"] = str(exc.retry_after)
        params["minutes"] = math.ceil(exc.retry_after / 60)
    elif isinstance(exc, Unavailable):
        # RFC 9110 §15.6.4: a 503 may say when to come back.
        headers["Retry-After"] = "60"
    return _pages(request).error(request.scope, exc.status, exc.key, lang=exc.lang,
                                 headers=headers, params=params)


async def http_error_response(request: Request, exc: Exception) -> Response:
    """The page for Starlette's HTTPException: unknown paths, wrong methods, malformed bodies."""
    assert isinstance(exc, HTTPException)
    key = _HTTP_KEYS.get(exc.status_code, "form_error_bad_request")
    return _pages(request).error(request.scope, exc.status_code, key, headers=exc.headers)


class ServerErrorPages:
    """Any exception that escapes the app becomes the plain 500 page in the URL's language.

    Starlette's ServerErrorMiddleware sits outside every user middleware, so a
    500 it produced would bypass the security headers; catching here keeps
    them on every response. The exception is logged for the operator.
    """

    def __init__(self, app: ASGIApp, pages: Pages) -> None:
        self.app = app
        self.pages = pages

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except ClientDisconnect:
            # The client went away mid-request (closed the tab, lost the network, or
            # was cut for being too slow): nobody to answer, nothing to investigate.
            logger.info("client disconnected during %s %s", scope.get("method"),
                        scope.get("path"))
        except Exception:
            logger.exception("Unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = self.pages.error(scope, 500, "form_error_server")
            await response(scope, receive, send)
