"""/healthz: whether this instance can serve, and the backlog that monitoring watches.

The proxy's health checks and the monitoring read it, and it is reachable from
outside, so it gives counts only: never a reference, a name or an address.
The database not answering is a 503, which takes the instance out of the
proxy's rotation until it answers again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from form_service.store import HealthCounts
from form_service.web.context import web_context
from form_service.web.pages import NO_STORE


def health_report(counts: HealthCounts, now: dt.datetime) -> dict[str, Any]:
    oldest = counts.oldest_pending_at
    age = None if oldest is None else max(0, round((now - oldest).total_seconds()))
    return {
        "database": "ok",
        "outbox": {"pending": counts.pending, "oldest_pending_age_seconds": age},
        "failed_messages": counts.failed,
        "overdue_requests": counts.overdue,
    }


async def healthz(request: Request) -> Response:
    store = request.state.store
    try:
        # ping first: it is the cheap question a load balancer asks every few seconds,
        # and a store that cannot reach its server says so without raising.
        counts = None
        if await run_in_threadpool(store.ping):
            counts = await run_in_threadpool(store.health, web_context(request).today())
    except Exception:  # any driver's error means the same to a load balancer
        counts = None
    if counts is None:
        return JSONResponse({"database": "unavailable"}, status_code=503, headers=NO_STORE)
    return JSONResponse(health_report(counts, dt.datetime.now(dt.UTC)), headers=NO_STORE)
