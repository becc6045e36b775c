"""A dependency that goes silent (packets dropped, sockets left open) makes answers fail
fast, not hang: PostgreSQL and Redis behind a forwarder the test silences (forwarder.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from forwarder import Forwarder, forwarding
from live_service import HIDDEN
from sqlalchemy.engine import make_url
from web_support import make_settings, served

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

        forwarder.silence()
        answer, took = _timed(client.post, "/en/request/", data=fields)
        assert took < PROMPT, f"the POST took {took:.1f} s"
        assert answer.status_code == 503
        assert "try again" in answer.text
        assert "Traceback" not in answer.text
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
