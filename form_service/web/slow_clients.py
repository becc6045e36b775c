"""Deadlines for a client to send its request: headers within one, then the body within another.

uvicorn closes a connection that sits idle between requests (keep-alive), but
once a client has sent a first byte it may take forever over the rest: one
byte every few seconds ("slowloris") holds a connection and a file descriptor
for as long as it likes, and a stalled upload holds a request open in the app.
This protocol gives each request POLICY_HEADER_TIMEOUT_SECONDS for its
headers and then POLICY_BODY_TIMEOUT_SECONDS for its body, counted from the
start, not reset by each byte; a client that misses one is cut, with one log
line. The time the app takes to answer is not limited here.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("form_service.web.slow_clients")


class DeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol with a header deadline and a body deadline per request."""

    header_timeout = 10.0
    body_timeout = 30.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._timer: asyncio.TimerHandle | None = None
        self._phase: str | None = None
        self._seen: Any = None  # the request cycle whose headers have arrived
        self._bytes_in_phase = False
        super().connection_made(transport)
        self._update()

    def data_received(self, data: bytes) -> None:
        self._bytes_in_phase = True
        super().data_received(data)
        self._update()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._update()

    def connection_lost(self, exc: Exception | None) -> None:
        self._set(None)
        super().connection_lost(exc)

    def _update(self) -> None:
        """Move to the phase the connection is in; a deadline runs from the phase's start."""
        cycle = self.cycle
        if cycle is not None and cycle is not self._seen:
            self._seen = cycle  # a new request's headers arrived
            self._set("body" if cycle.more_body else None)
        elif cycle is None or cycle.response_complete:
            self._set("headers")  # waiting for the (next) request
        elif not cycle.more_body:
            self._set(None)  # the whole request is here: the app is answering

    def _set(self, phase: str | None) -> None:
        if phase == self._phase:
            return  # a deadline is never pushed back by more bytes
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._phase = phase
        self._bytes_in_phase = False
        if phase is not None and not self.transport.is_closing():
            seconds = self.header_timeout if phase == "headers" else self.body_timeout
            self._timer = self.loop.call_later(seconds, self._cut, phase, seconds)

    def _cut(self, phase: str, seconds: float) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if phase == "body" or self._bytes_in_phase or self.cycle is None:
            # (An idle keep-alive connection that never began another request is
            # uvicorn's keep-alive timeout's to close: nothing worth a log line.)
            log.info("closed a connection that took longer than %g s to send its %s",
                     seconds, phase)
        self.transport.close()


def deadline_protocol(header_timeout: float, body_timeout: float) -> type[DeadlineProtocol]:
    """The protocol class for uvicorn's `http=` with these deadlines."""
    return type("DeadlineProtocol", (DeadlineProtocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout,
    })
