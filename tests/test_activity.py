"""Background mail gives way to customers: counted requests, bounded deferral."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path

from delivery_support import new_request
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from form_service.delivery.emails import Outgoing
from form_service.delivery.mailer import MaildirMailer
from form_service.delivery.worker import Worker
from form_service.settings import Settings
from form_service.store import Store
from form_service.web.activity import Activity, TrackActivity


class ManualClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_quiet_for_counts_from_the_end_of_the_last_request() -> None:
    clock = ManualClock()
    activity = Activity(clock)
    activity.begin()
    clock.now += 5
    assert activity.quiet_for() == 0.0  # a request is still running
    activity.end()
    clock.now += 0.25
    assert activity.quiet_for() == 0.25


def test_the_middleware_counts_each_request_while_it_runs() -> None:
    activity = Activity()
    seen: list[int] = []

    async def page(request: Request) -> PlainTextResponse:
        seen.append(activity.in_flight)
        return PlainTextResponse("ok")

    app = TrackActivity(Starlette(routes=[Route("/", page)]), activity)
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
        assert client.get("/missing").status_code == 404
    assert seen == [1]
    assert activity.in_flight == 0


def _sent(settings: Settings) -> int:
    new = settings.maildir / "new"
    return len(list(new.iterdir())) if new.is_dir() else 0


async def _run_worker_while(busy: bool, store: Store, settings: Settings, *,
                            max_defer: float, urgent: bool = False) -> float:
    """Seconds from a new request to its e-mail, with a customer request held open or not."""
    activity = Activity()
    worker = Worker(store, settings, owner="w", poll_interval=60, activity=activity,
                    quiet=0.05, max_defer=max_defer)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    await asyncio.sleep(0.2)  # the first round found nothing and sleeps
    if busy:
        activity.begin()  # a customer's request that takes its time
    now = dt.datetime.now(dt.UTC)
    await asyncio.to_thread(store.create_request, new_request(submitted_at=now))
    started = time.monotonic()
    worker.wake(urgent=urgent)
    while _sent(settings) == 0 and time.monotonic() - started < 20:
        await asyncio.sleep(0.02)
    took = time.monotonic() - started
    stop.set()
    await asyncio.wait_for(task, 5)
    return took


def test_an_idle_service_sends_at_once(store: Store, settings: Settings) -> None:
    took = asyncio.run(_run_worker_while(False, store, settings, max_defer=3.0))
    assert _sent(settings) == 1
    assert took < 1.5


def test_a_busy_service_sends_after_at_most_max_defer(store: Store, settings: Settings) -> None:
    """While a request is in progress the e-mail waits, but no longer than max_defer."""
    took = asyncio.run(_run_worker_while(True, store, settings, max_defer=1.5))
    assert _sent(settings) == 1
    assert 1.5 <= took < 6


def test_an_urgent_wake_does_not_give_way(store: Store, settings: Settings) -> None:
    """A verified request's ticket goes out at once, even while customers are served."""
    took = asyncio.run(_run_worker_while(True, store, settings, max_defer=5.0, urgent=True))
    assert _sent(settings) == 1
    assert took < 2.5


class CustomerArrivesAfterFirst(MaildirMailer):
    """The real Maildir delivery; after the first message, a customer's request begins."""

    def __init__(self, path: Path, activity: Activity) -> None:
        super().__init__(path)
        self.activity = activity

    async def send(self, outgoing: Outgoing) -> None:
        await super().send(outgoing)
        if self.activity.in_flight == 0:
            self.activity.begin()


def test_a_batch_gives_way_between_its_messages(store: Store, settings: Settings) -> None:
    """A customer arriving mid-batch pauses the rest of it until the request ends."""
    activity = Activity()
    mailer = CustomerArrivesAfterFirst(settings.maildir, activity)
    worker = Worker(store, settings, owner="w", poll_interval=60, activity=activity,
                    quiet=0.05, max_defer=30.0, mailer=mailer)
    now = dt.datetime.now(dt.UTC)
    for i in range(3):
        store.create_request(new_request(submitted_at=now, email=f"janis{i}@example.lv"))

    async def scenario() -> tuple[int, int]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run(stop))
        waited = 0.0
        while _sent(settings) == 0:
            assert waited < 20, "the first e-mail was never sent"
            await asyncio.sleep(0.02)
            waited += 0.02
        await asyncio.sleep(0.5)
        during = _sent(settings)
        activity.end()  # the customer has their page
        for _ in range(200):
            if _sent(settings) == 3:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(task, 5)
        return during, _sent(settings)

    assert asyncio.run(scenario()) == (1, 3)
