"""The app factory: `create_app(settings)` builds the service; nothing happens at import.

Middleware, outermost first: security headers (so every response has them,
500s included), the 500 page, the body limit; then Starlette's routing with
the error pages of errors.py. The lifespan opens the store, migrates it,
starts the rate limiter and the delivery worker, and hands them to handlers
through request.state.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from form_service.customer import status, views
from form_service.customer.forms import MAX_LENGTH
from form_service.customer.policy import PolicyVersions
from form_service.settings import Settings
from form_service.store import Store
from form_service.web.activity import Activity, TrackActivity
from form_service.web.assets import load_site_look
from form_service.web.context import WebContext
from form_service.web.errors import (
    ServerErrorPages,
    WebError,
    http_error_response,
    web_error_response,
)
from form_service.web.health import healthz
from form_service.web.pages import Pages
from form_service.web.ratelimit import Limiter, RateLimits, parse_proxies
from form_service.web.security import BodyLimit, SecurityHeaders, security_headers
from form_service.web.site_files import SiteFiles
from site_config.facts import load_site

STATIC = Path(__file__).parent / "static"


def _route(path: str, endpoint: Any, methods: list[str]) -> list[BaseRoute]:
    """The route, and for any other method a 405 that names the methods it does take.

    Without the second route, the static site mounted at "/" would answer a PUT on
    a service path with its own 405 (Allow: GET, HEAD), which is not true there.
    """
    return [Route(path, endpoint, methods=methods), Route(path, _NotAllowed(methods))]


class _NotAllowed:
    """An ASGI app answering every method with 405 and Allow (as an app, not a function,
    Starlette's Route gives it every method, unknown ones included)."""

    def __init__(self, methods: list[str]) -> None:
        self.allow = ", ".join(methods)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        raise HTTPException(405, headers={"Allow": self.allow})


def _routes(web: WebContext, serve_site: bool) -> list[BaseRoute]:
    routes: list[BaseRoute] = [
        *_route("/healthz", healthz, ["GET", "HEAD"]),
        Route("/request/verify/{token}", views.verify_page, methods=["GET", "HEAD"]),
        *_route("/request/verify/{token}", views.verify_decision, ["GET", "HEAD", "POST"]),
        Mount("/request/assets", StaticFiles(directory=STATIC), name="form-assets"),
    ]
    for lang in web.site.language_codes:
        prefix = web.site.prefix(lang)
        routes += [
            *_route(f"{prefix}request/", views.request_form, ["GET", "HEAD", "POST"]),
            *_route(f"{prefix}request", views.slash_redirect, ["GET", "HEAD"]),
            *_route(f"{prefix}request/sent/{{token}}", views.sent_page, ["GET", "HEAD"]),
            # After the form (customer/status.py): the request's own page and its actions.
            *_route(f"{prefix}request/status/{{token}}", status.status_page, ["GET", "HEAD"]),
            *_route(f"{prefix}request/status/{{token}}/withdraw", status.withdraw,
                    ["GET", "HEAD", "POST"]),
            *_route(f"{prefix}request/status/{{token}}/reply", status.reply, ["POST"]),
            *_route(f"{prefix}request/status/{{token}}/code", status.send_code, ["POST"]),
            *_route(f"{prefix}request/status/{{token}}/unlock", status.unlock, ["POST"]),
            *_route(f"{prefix}request/status/{{token}}/files/{{file_id}}", status.download,
                    ["POST"]),
        ]
    if web.settings.staff_console:
        from form_service.staff import console

        routes += console.routes(_route)
    if serve_site:
        # Last: everything that is not the service is the static policy site.
        routes.append(Mount("/", SiteFiles(directory=web.settings.site_dir, html=True)))
    return routes


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    today: dt.date | None = None,
    rate_limits: RateLimits | None = None,
    run_worker: bool = True,
    serve_site: bool = True,
    env: Mapping[str, str] | None = None,
) -> Starlette:
    """The service for `settings`.

    `store`: use this store instead of opening settings.database_url (the caller
    closes it). `today`: pick the policy in force on this day (tests, previews).
    `rate_limits`: instead of POLICY_RATE_LIMIT_* from `env` (default os.environ).
    """
    site = load_site(settings.root)
    look = load_site_look(site, settings.site_dir)
    pages = Pages(site, look, {
        "hours": settings.verify_link_max_age_hours,
        "details_max": MAX_LENGTH["details"],
        "minutes": 60,
    })
    web = WebContext(
        settings=settings,
        site=site,
        pages=pages,
        policy=PolicyVersions(site),
        proxies=parse_proxies(settings.trusted_proxies),
        today=(lambda: today) if today is not None else dt.date.today,
    )
    limits = rate_limits or RateLimits.from_env(os.environ if env is None else env)
    activity = Activity()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        own_store = store is None
        active = Store.from_settings(settings) if store is None else store
        limiter = Limiter(settings.rate_limit_storage, limits)
        stop = asyncio.Event()
        worker = _worker(active, settings, run_worker, activity)
        task = None
        try:
            await run_in_threadpool(active.migrate)
            if run_worker:
                task = asyncio.create_task(worker.run(stop), name="outbox-worker")
            yield {"store": active, "limiter": limiter, "worker": worker}
        finally:
            stop.set()
            if task is not None:
                worker.wake()
                await task
            await limiter.aclose()
            if own_store:
                await run_in_threadpool(active.close)

    app = Starlette(
        routes=_routes(web, serve_site),
        middleware=[
            Middleware(TrackActivity, activity=activity),
            Middleware(SecurityHeaders, headers=security_headers(settings, look.script_hashes)),
            Middleware(ServerErrorPages, pages=pages),
            Middleware(BodyLimit, pages=pages, uploads=_uploads(settings)),
        ],
        exception_handlers={WebError: web_error_response, HTTPException: http_error_response},
        lifespan=lifespan,
    )
    # A path with or without its slash is the site's business (SiteFiles, slash_redirect);
    # the router's own redirect would copy the Host header into Location.
    app.router.redirect_slashes = False
    app.state.web = web
    app.state.pages = pages
    if settings.staff_console:
        from form_service.staff.console import Console

        app.state.console = Console(web)
    return app


def _uploads(settings: Settings) -> tuple[re.Pattern[str], int] | None:
    """The console's answer upload: files up to POLICY_ANSWER_FILE_MAX_MB each."""
    if not settings.staff_console:
        return None
    from form_service.answer_files import MAX_FILES

    return (re.compile(r"/staff/requests/[^/]+/answer"),
            settings.answer_file_max_bytes * MAX_FILES + 1024 * 1024)


class _IdleWorker:
    """Stands in for the worker when it is not run here (another process delivers)."""

    def wake(self, *, urgent: bool = False) -> None:
        pass


def _worker(store: Store, settings: Settings, run: bool, activity: Activity) -> Any:
    if not run:
        return _IdleWorker()
    from form_service.delivery.worker import Worker

    # The default owner (host:pid:random) is unique even for two workers in one
    # process; the lease decides how soon a dead worker's messages are taken over.
    # It gives way to the customers this process is serving (activity.py).
    return Worker(store, settings, lease=dt.timedelta(seconds=settings.outbox_lease_seconds),
                  activity=activity)
