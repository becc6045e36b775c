"""Rate limits per client address, in memory and shared through Redis; none per e-mail."""

from __future__ import annotations

import asyncio
import html
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient
from web_support import (
    client_for,
    confirmation,
    count_requests,
    make_settings,
    open_form,
    open_form_from,
)

from form_service.settings import SettingsError
from form_service.web.ratelimit import Limiter, RateLimits, client_address, parse_proxies

REDIS = "redis://127.0.0.1:6379"


def _post(client: TestClient, path: str = "/request/", **fields: str) -> int:
    form = open_form(client, path)
    return client.post(path, data=form.fields(**fields)).status_code


@pytest.mark.parametrize(
    ("path", "words"),
    [("/request/", "Pārāk daudz pieprasījumu"), ("/en/request/", "Too many requests"),
     ("/ru/request/", "Слишком много запросов")],
)
def test_per_address_limit_is_429_with_retry_after(tmp_path: Path, path: str, words: str) -> None:
    """Beyond the per-address limit a POST gets 429, Retry-After and a page in its language."""
    settings = make_settings(tmp_path)
    limits = RateLimits(per_ip="2/hour")
    with client_for(settings, rate_limits=limits) as client:
        assert _post(client, path, email="a@example.lv") == 303
        assert _post(client, path, email="b@example.lv") == 303
        form = open_form(client, path)
        response = client.post(path, data=form.fields(email="c@example.lv"))
        assert response.status_code == 429
        assert 0 < int(response.headers["retry-after"]) <= 3600
        assert words in response.text
        assert count_requests(settings) == 2
        # Reading the form is never limited.
        assert client.get(path).status_code == 200


def test_nobody_can_lock_a_person_out_of_their_own_request(tmp_path: Path) -> None:
    """Five requests for someone's address from five networks do not stop that person
    filing their own from a sixth, and every answer looks the same: none tells how many
    requests the address has made."""
    settings = make_settings(tmp_path, POLICY_TRUSTED_PROXIES="10.0.0.1")
    with client_for(settings, peer="10.0.0.1") as client:

        def post(n: int, email: str) -> httpx.Response:
            form = open_form(client, "/en/request/")
            return client.post("/en/request/", data=form.fields(email=email),
                               headers={"X-Forwarded-For": f"198.51.100.{n}"})

        answers = [post(n, variant) for n, variant in enumerate(
            ["anna@example.lv", "ANNA@Example.lv", "anna+x@example.lv", " anna@example.lv",
             "Anna+promo@EXAMPLE.LV", "anna@example.lv"])]
        assert [a.status_code for a in answers] == [303] * 6
        pages = [client.get(a.headers["location"]).text for a in answers]
        shapes = {re.sub(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}|sent/[^\"]+", "X", page) for page in pages}
        assert len(shapes) == 1
    assert count_requests(settings) == 6


def test_ipv4_mapped_peer_is_counted_as_its_ipv4_address(tmp_path: Path) -> None:
    """On a dual-stack listener IPv4 clients arrive as ::ffff:a.b.c.d; each is its own
    client, not one /64 shared by all of them."""
    settings = make_settings(tmp_path)
    limits = RateLimits(per_ip="1/hour")
    with client_for(settings, rate_limits=limits, peer="::ffff:198.51.100.1") as first, \
            client_for(settings, rate_limits=limits, peer="::ffff:198.51.100.2") as second:
        assert _post(first, email="a@example.lv") == 303
        assert _post(second, email="b@example.lv") == 303
        assert _post(first, email="c@example.lv") == 429


def test_forwarded_for_is_believed_from_a_trusted_proxy(tmp_path: Path) -> None:
    """Behind our proxy, each client address in X-Forwarded-For has its own count."""
    settings = make_settings(tmp_path, POLICY_TRUSTED_PROXIES="10.0.0.0/8")
    limits = RateLimits(per_ip="1/hour")
    with client_for(settings, rate_limits=limits, peer="10.1.2.3") as client:

        def post(forwarded: str, email: str) -> int:
            form = open_form(client)
            return client.post("/request/", data=form.fields(email=email),
                               headers={"X-Forwarded-For": forwarded}).status_code

        assert post("203.0.113.5", "a@example.lv") == 303
        assert post("203.0.113.6", "b@example.lv") == 303
        # A client cannot escape by writing its own hops to the left of the proxy's.
        assert post("1.1.1.1, 203.0.113.5", "c@example.lv") == 429
        assert post("203.0.113.5, 10.9.9.9", "d@example.lv") == 429


def test_forwarded_for_is_ignored_from_anyone_else(tmp_path: Path) -> None:
    """A client that is not our proxy cannot choose its address with X-Forwarded-For."""
    settings = make_settings(tmp_path, POLICY_TRUSTED_PROXIES="10.0.0.0/8")
    limits = RateLimits(per_ip="1/hour")
    with client_for(settings, rate_limits=limits, peer="198.51.100.7") as client:
        for n, expected in enumerate([303, 429]):
            form = open_form(client)
            response = client.post("/request/", data=form.fields(email=f"{n}@example.lv"),
                                   headers={"X-Forwarded-For": f"203.0.113.{n}"})
            assert response.status_code == expected


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.7", ["203.0.113.1"], "198.51.100.7"),          # not a proxy: ignored
        ("10.0.0.1", ["203.0.113.1"], "203.0.113.1"),               # our proxy: believed
        ("10.0.0.1", ["6.6.6.6, 203.0.113.1"], "203.0.113.1"),      # spoofed left hop
        ("10.0.0.1", ["203.0.113.1, 10.0.0.2"], "203.0.113.1"),     # two proxies of ours
        ("10.0.0.1", ["6.6.6.6", "203.0.113.1"], "203.0.113.1"),    # two header lines
        ("10.0.0.1", [], "10.0.0.1"),                               # proxy's own request
        ("10.0.0.1", ["10.0.0.3"], "10.0.0.3"),                     # only proxies: leftmost
        ("10.0.0.1", ["junk"], "junk"),
        ("2001:db8::1", [], "2001:db8::/64"),                       # IPv6 counted per /64
        ("::ffff:198.51.100.7", [], "198.51.100.7"),                # IPv4-mapped: the IPv4
        ("10.0.0.1", ["::ffff:203.0.113.9"], "203.0.113.9"),
        (None, [], "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str) -> None:
    """The rightmost hop that is not one of our proxies is the client."""
    proxies = parse_proxies(("10.0.0.0/8",))
    assert client_address(peer, forwarded, proxies) == expected


def test_bad_trusted_proxy_setting_names_the_variable() -> None:
    """A trusted proxy that is not an address is a settings error naming the variable."""
    with pytest.raises(SettingsError, match="POLICY_TRUSTED_PROXIES"):
        parse_proxies(("10.0.0.0/8", "proxy.example"))


def test_bad_limit_setting_names_the_variable() -> None:
    """A rate limit that `limits` cannot parse is a settings error naming the variable."""
    with pytest.raises(SettingsError, match="POLICY_RATE_LIMIT_PER_IP"):
        RateLimits.from_env({"POLICY_RATE_LIMIT_PER_IP": "lots"})
    assert RateLimits.from_env({"POLICY_RATE_LIMIT_PER_IP": "7/minute"}).per_ip == "7/minute"


# --- Redis: several instances, one count ------------------------------------------------


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test alone; its keys are deleted afterwards."""
    prefix = f"policy-site-test-{uuid.uuid4().hex}"
    yield prefix

    async def clean() -> None:
        limiter = Limiter(REDIS, RateLimits(key_prefix=prefix))
        await limiter.reset()
        await limiter.aclose()

    asyncio.run(clean())


def test_two_instances_share_one_count_in_redis(tmp_path: Path, redis_prefix: str) -> None:
    """With Redis as the store, two app instances count the same client together."""
    settings = make_settings(tmp_path, POLICY_RATE_LIMIT_STORAGE=REDIS)
    limits = RateLimits(per_ip="2/hour", key_prefix=redis_prefix)
    with client_for(settings, rate_limits=limits) as first, \
            client_for(settings, rate_limits=limits) as second:
        assert first.app is not second.app
        assert _post(first, email="a@example.lv") == 303
        assert _post(second, email="b@example.lv") == 303
        assert _post(first, email="c@example.lv") == 429
        assert _post(second, email="d@example.lv") == 429
    assert count_requests(settings) == 2


def test_async_redis_url_is_accepted(tmp_path: Path, redis_prefix: str) -> None:
    """POLICY_RATE_LIMIT_STORAGE may also be written async+redis://."""
    settings = make_settings(tmp_path, POLICY_RATE_LIMIT_STORAGE=f"async+{REDIS}")
    limits = RateLimits(per_ip="1/hour", key_prefix=redis_prefix)
    with client_for(settings, rate_limits=limits) as client:
        assert _post(client) == 303
        assert _post(client, email="b@example.lv") == 429


def test_unreachable_redis_lets_requests_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """If the shared store is down, a rights request still gets through, and it is logged."""
    settings = make_settings(tmp_path, POLICY_RATE_LIMIT_STORAGE="redis://127.0.0.1:1")
    with client_for(settings) as client:
        assert _post(client) == 303
    assert "Rate-limit storage unavailable" in caplog.text


def test_a_form_sent_again_uses_no_count(tmp_path: Path) -> None:
    """The same form sent again (same submission id, same data: a double click, a reload)
    is answered with its confirmation and does not count against the client's limit."""
    settings = make_settings(tmp_path)
    limits = RateLimits(per_ip="1/hour")
    with client_for(settings, rate_limits=limits) as client:
        form = open_form(client)
        first = client.post("/request/", data=form.fields(email="anna@example.lv"))
        again = [client.post("/request/", data=form.fields(email="anna@example.lv"))
                 for _ in range(3)]
        assert first.status_code == 303 and [a.status_code for a in again] == [303] * 3
        # The same reference and due date (the signed link itself has its own time).
        assert confirmation(again[-1].headers["location"]) == confirmation(
            first.headers["location"])
        # A new submission is the one the limit stops.
        assert _post(client, email="anna@example.lv") == 429
    assert count_requests(settings) == 1


@pytest.mark.parametrize(("path", "words"), [
    ("/en/request/", "This form was already sent on"),
    ("/request/", "Šī veidlapa jau tika nosūtīta"),
])
def test_a_corrected_form_is_not_answered_with_the_first_confirmation(
    tmp_path: Path, path: str, words: str
) -> None:
    """The same submission id with different data (the customer went back and fixed a typo)
    shows where the first one went (reference, masked address) and a fresh form, prefilled
    with the correction, that sends it as a new request."""
    settings = make_settings(tmp_path)
    with client_for(settings) as client:
        form = open_form(client, path)
        first = client.post(path, data=form.fields(email="anna@example.lv"))
        reference = confirmation(first.headers["location"])["ref"]
        fixed = client.post(path, data=form.fields(email="anna@example.lv", name="Anna Ozola"))
        assert fixed.status_code == 409
        text = html.unescape(fixed.text)
        assert words in text and reference in text and "a***@e***.lv" in text
        assert 'value="Anna Ozola"' in fixed.text
        resent = open_form_from(fixed.text)
        assert resent.form_token != form.form_token
        again = client.post(path, data=resent.fields(email="anna@example.lv",
                                                     name="Anna Ozola"))
        assert again.status_code == 303
        assert confirmation(again.headers["location"])["ref"] != reference
    assert count_requests(settings) == 2
