"""How the web layer calls the store: in a worker thread, for at most a few seconds.

A database path that drops packets silently leaves a query waiting for an
answer that does not come: neither the driver nor the kernel notice while the
sockets look open (a path that blocks packets only one way, a frozen VM, a
firewall that drops instead of refusing). Without a bound, the request waited
until the path came back (45 s and more; /healthz too). Here the handler stops
waiting after POLICY_DATABASE_TIMEOUT_SECONDS and the customer gets the "try
again" page (503) in their language.

The thread itself cannot be stopped: it stays with its query until the path
returns or TCP gives up (db.py's keepalives and tcp_user_timeout), and its
work may still complete then. That is safe for the form: the same form sent
again finds its request by its submission id (store.create_request).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import anyio.to_thread
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request

from form_service.web.context import web_context
from form_service.web.errors import Unavailable

logger = logging.getLogger("form_service")

P = ParamSpec("P")
T = TypeVar("T")


async def in_time(request: Request, func: Callable[P, T], /, *args: P.args,
                  **kwargs: P.kwargs) -> T:
    """func(*args, **kwargs) in a worker thread; Unavailable if the database does not answer
    within the deadline or cannot be reached (refused, gone, full disk)."""
    seconds = web_context(request).settings.database_timeout_seconds
    call = functools.partial(func, *args, **kwargs)
    with anyio.move_on_after(seconds):
        try:
            # abandon_on_cancel: without it, cancelling waits for the thread, which is
            # exactly the wait we are here to bound.
            return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
        except (OperationalError, PoolTimeout) as exc:
            # The driver's message names the server and the failure, never a parameter
            # (hide_parameters in db.py): the operator needs it.
            logger.error("Database unavailable on %s %s: %s", request.method,
                         request.url.path, exc)
            raise Unavailable() from None
    # Only the deadline gets here: a return or an exception has left the block.
    logger.error("Database did not answer within %s s on %s %s", seconds,
                 request.method, request.url.path)
    raise Unavailable()
