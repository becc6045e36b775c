"""How busy the service is with customers right now, so that background mail gives way.

A submission is acknowledged only after it is stored; the e-mails it causes
are sent afterwards by the worker in the same process. Under a burst of
customers the worker waits until the requests pause (or until it has waited
`max_defer` seconds, so no e-mail waits without bound), because a customer
waiting for a page matters more than an e-mail leaving a second later.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Activity:
    """Counts the HTTP requests in progress and remembers when the last one ended."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.in_flight = 0
        self._last_end = clock()

    def begin(self) -> None:
        self.in_flight += 1

    def end(self) -> None:
        self.in_flight -= 1
        self._last_end = self._clock()

    def quiet_for(self) -> float:
        """Seconds since the last request ended; 0 while any is in progress."""
        if self.in_flight > 0:
            return 0.0
        return max(0.0, self._clock() - self._last_end)


class TrackActivity:
    """ASGI middleware: every HTTP request is counted while it runs (on the event loop).

    A request with a body counts only once the body has arrived: a client
    trickling (or stalling) its upload is not a customer waiting for a page,
    and 150 such connections must not hold back the verification e-mails.
    """

    def __init__(self, app: ASGIApp, activity: Activity) -> None:
        self.app = app
        self.activity = activity

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> Any:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted = False

        def count() -> None:
            nonlocal counted
            if not counted:
                counted = True
                self.activity.begin()

        async def receive_counting() -> Message:
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                count()
            return message

        async def send_counting(message: Message) -> None:
            count()  # answering before (or without) reading the body
            await send(message)

        headers = dict(scope.get("headers") or [])
        if b"content-length" not in headers and b"transfer-encoding" not in headers:
            count()  # no body to wait for
        try:
            await self.app(scope, receive_counting, send_counting)
        finally:
            if counted:
                self.activity.end()
