"""/healthz: whether this instance can serve, and the backlog that monitoring watches.

The proxy's health checks and the monitoring read it, and it is reachable from
outside, so it gives counts only: never a reference, a name or an address.

    503 {"database": "unavailable"}  the database does not answer (in time)
    503 {"database": "read-only"}    it answers but takes no write (a full disk, a
                                     read-only replica): every new request would fail
    200 "status": "degraded"         serving, but something needs the operator:
                                     "redis": "unavailable" (rate limits are not
                                     counted: they fail open, ratelimit.py), or
                                     "disk": "low" (SQLite: less than POLICY_MIN_FREE_MB
                                     free under the database's folder)
    200 "status": "ok"

A 503 takes the instance out of the proxy's rotation until it answers again.
Low disk is not a 503: requests are still being stored, and with SQLite this
is the only instance, so taking it out would turn customers away while it
works; the write probe turns it into a 503 once writes actually fail.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from form_service.private import sqlite_path
from form_service.store import HealthCounts, Store
from form_service.web.context import web_context
from form_service.web.deadline import in_time
from form_service.web.errors import Unavailable
from form_service.web.pages import NO_STORE

logger = logging.getLogger("form_service")

_MB = 1024 * 1024


def health_report(counts: HealthCounts, now: dt.datetime) -> dict[str, Any]:
    oldest = counts.oldest_pending_at
    age = None if oldest is None else max(0, round((now - oldest).total_seconds()))
    return {
        "status": "ok",
        "database": "ok",
        "outbox": {"pending": counts.pending, "oldest_pending_age_seconds": age},
        "failed_messages": counts.failed,
        "overdue_requests": counts.overdue,
    }


def _writes(store: Store, at: dt.datetime) -> bool:
    """Whether the database takes a write (store.probe_write), in the worker thread."""
    try:
        store.probe_write(at)
    except (SQLAlchemyError, OSError) as exc:
        # Logged each time the proxy asks (every few seconds): it needs the operator.
        logger.error("Health check: the database takes no writes: %s", exc)
        return False
    return True


async def _database(request: Request, store: Store) -> str | HealthCounts:
    """The counts, or why there are none ("unavailable", "read-only")."""
    now = dt.datetime.now(dt.UTC)
    try:
        # ping first: it is the cheap question, and a store that cannot reach its
        # server says so without raising.
        if not await in_time(request, store.ping):
            return "unavailable"
        if not await in_time(request, _writes, store, now):
            return "read-only"
        counts: HealthCounts = await in_time(request, store.health,
                                             web_context(request).today())
    except Unavailable:
        return "unavailable"  # no answer within the deadline (in_time logged it)
    except Exception:  # any driver's error means the same to a load balancer
        logger.exception("Health check failed")
        return "unavailable"
    return counts


def _free_mb(store: Store) -> int | None:
    """Free space of the filesystem holding the SQLite database (None on PostgreSQL,
    whose server watches its own disk)."""
    path = sqlite_path(store.database_url)
    if path is None:
        return None
    return shutil.disk_usage(path.parent).free // _MB


async def healthz(request: Request) -> Response:
    store: Store = request.state.store
    database = await _database(request, store)
    if not isinstance(database, HealthCounts):
        return JSONResponse({"database": database}, status_code=503, headers=NO_STORE)
    report = health_report(database, dt.datetime.now(dt.UTC))
    settings = web_context(request).settings
    free = _free_mb(store)
    if free is not None:
        low = free < settings.min_free_mb
        report["disk"] = "low" if low else "ok"
        report["disk_free_mb"] = free
    redis = await request.state.limiter.reachable()
    if redis is not None:
        report["redis"] = "ok" if redis else "unavailable"
    if report.get("disk") == "low" or report.get("redis") == "unavailable":
        report["status"] = "degraded"
    return JSONResponse(report, headers=NO_STORE)
