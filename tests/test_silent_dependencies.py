"""A dependency that goes silent (packets dropped, sockets left open) makes answers fail
fast, not hang: PostgreSQL and Redis behind a forwarder the test silences (forwarder.py)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import psycopg
import pytest
from forwarder import Forwarder, forwarding
from live_service import HIDDEN
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from web_support import client_for, count_requests, make_settings, open_form, served

from form_service import db
from form_service.store import Store
from form_service.web.ratelimit import Limiter, RateLimits

REDIS = "redis://127.0.0.1:6379"
# The deadline the tests give the service: short, so that the suite stays fast.
TIMEOUT = "1.5"
# What "answers within a few seconds" means here: the deadline plus generous slack.
PROMPT = 5.0
# A client that would otherwise wait as long as the service hangs (45 s before this change).
PATIENCE = 60.0


@pytest.fixture
def pg_forwarder(postgres_url: str) -> Iterator[tuple[str, Forwarder]]:
    """The test's PostgreSQL database, reached through a forwarder."""
    url = make_url(postgres_url)
    with forwarding(url.host or "127.0.0.1", url.port or 5432) as forwarder:
        yield url.set(host="127.0.0.1", port=forwarder.port).render_as_string(
            hide_password=False), forwarder


def _form(client: httpx2.Client, path: str) -> dict[str, str]:
    page = client.get(path, params={"type": "access"})
    assert page.status_code == 200, page.text[:300]
    fields = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
    fields.update(name="Test Person", email="person@example.lv", request_type="access",
                  details="Please send me my data.")
    return fields


def _timed(call: object, *args: object, **kwargs: object) -> tuple[httpx2.Response, float]:
    started = time.monotonic()
    response = call(*args, **kwargs)  # type: ignore[operator]
    return response, time.monotonic() - started


def test_a_silent_postgresql_gets_the_try_again_page_within_seconds(
    tmp_path: Path, pg_forwarder: tuple[str, Forwarder]
) -> None:
    """With the database path silent, a form POST answers 503 with the "try again" page in
    the customer's language and /healthz 503, both within seconds; when the path comes
    back, the same form goes through and /healthz is 200 again."""
    url, forwarder = pg_forwarder
    settings = make_settings(tmp_path, POLICY_DATABASE_URL=url,
                             POLICY_DATABASE_TIMEOUT_SECONDS=TIMEOUT)
    with served(settings) as base, httpx2.Client(
            base_url=base, timeout=PATIENCE, headers={"Origin": base}) as client:
        assert client.get("/healthz").status_code == 200
        fields = _form(client, "/en/request/")
        latvian = _form(client, "/request/")

        forwarder.silence()
        answer, took = _timed(client.post, "/en/request/", data=fields)
        assert took < PROMPT, f"the POST took {took:.1f} s"
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "60"
        assert "try again" in answer.text
        assert "Traceback" not in answer.text
        answer = client.post("/request/", data=latvian)
        assert answer.status_code == 503
        assert "mēģiniet vēlreiz" in answer.text
        health, took = _timed(client.get, "/healthz")
        assert took < PROMPT, f"/healthz took {took:.1f} s"
        assert health.status_code == 503
        assert health.json()["database"] == "unavailable"

        forwarder.resume()
        deadline = time.monotonic() + 30
        while client.get("/healthz").status_code != 200:
            assert time.monotonic() < deadline, "/healthz did not recover"
            time.sleep(0.2)
        answer = client.post("/en/request/", data=fields)
        assert answer.status_code == 303, answer.text[:300]


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards (Redis direct)."""
    prefix = f"policy-site-test-{uuid.uuid4().hex}"
    yield prefix

    async def clean() -> None:
        limiter = Limiter(REDIS, RateLimits(key_prefix=prefix))
        await limiter.reset()
        await limiter.aclose()

    asyncio.run(clean())


def test_a_silent_redis_lets_the_form_through_within_two_seconds(
    tmp_path: Path, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With the path to Redis silent, a form POST is stored and answered within about 2 s,
    uncounted, and the log says the limit was not applied; /healthz says "degraded"."""
    with forwarding("127.0.0.1", 6379) as forwarder:
        settings = make_settings(
            tmp_path, POLICY_RATE_LIMIT_STORAGE=f"redis://127.0.0.1:{forwarder.port}")
        limits = RateLimits(per_ip="100/hour", key_prefix=redis_prefix)
        with client_for(settings, rate_limits=limits) as client:
            # One request while Redis answers: the limiter's connection is open, as in
            # production when the path goes silent.
            first = client.post("/en/request/", data=open_form(client, "/en/request/").fields())
            assert first.status_code == 303
            assert client.get("/healthz").json()["redis"] == "ok"
            form = open_form(client, "/en/request/")

            forwarder.silence()
            with caplog.at_level(logging.ERROR, logger="form_service"):
                answer, took = _timed(client.post, "/en/request/",
                                      data=form.fields(email="second@example.lv"))
            assert took < 2.5, f"the POST took {took:.1f} s"
            assert answer.status_code == 303, answer.text[:300]
            health, took = _timed(client.get, "/healthz")
            assert took < 2.5, f"/healthz took {took:.1f} s"
            forwarder.resume()
    assert count_requests(settings) == 2
    assert "Rate-limit storage unavailable" in caplog.text
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["redis"] == "unavailable"


# --- PostgreSQL's own bounds (db.py) -------------------------------------------------


def test_postgresql_cancels_a_statement_that_outlasts_the_deadline(postgres_url: str) -> None:
    """The server gives the connection back after the deadline instead of working on for
    a customer already told to try again; the staff's commands are not cut short."""
    store = Store(postgres_url, timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(OperationalError, match="statement timeout"), \
                store.reading() as session:
            session.execute(text("SELECT pg_sleep(5)"))
        assert time.monotonic() - started < 3
    finally:
        store.close()
    commands = Store(postgres_url, timeout=0.5, statement_timeouts=False)
    try:
        with commands.reading() as session:
            session.execute(text("SELECT pg_sleep(1)"))
    finally:
        commands.close()


def test_migrations_wait_for_another_instance_longer_than_a_request_may(
    postgres_url: str,
) -> None:
    """An instance starting while another migrates waits for its lock as long as that
    takes: the requests' lock_timeout does not apply to migrations."""
    holder = psycopg.connect(make_url(postgres_url).set(drivername="postgresql")
                             .render_as_string(hide_password=False), autocommit=True)
    holder.execute("SELECT pg_advisory_lock(%s)", (db._MIGRATION_LOCK,))
    threading.Timer(1.5, holder.close).start()  # closing releases the lock
    store = Store(postgres_url, timeout=0.5)
    try:
        started = time.monotonic()
        store.migrate()
        assert time.monotonic() - started >= 1.0
        assert db.revision(store._engine) is not None
    finally:
        store.close()
