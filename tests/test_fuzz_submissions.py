"""Ten thousand generated POSTs: never a 5xx, accepted ones stored as sent, rejected ones not.

5000 + 2500 + 2500 examples, one POST each.
One app serves every example (rate limits raised for this module only); the
examples vary field values (any Unicode, control characters, huge values),
leave fields out or send them twice, and spoil the tokens or the whole body.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from site_tree import LANGUAGES, PREFIXES, ROOT
from starlette.testclient import TestClient
from web_support import SECRET, client_for, confirmation, count_requests, make_settings
from web_support import stored_request as stored

from form_service.addresses import normalise
from form_service.delivery.emails import address
from form_service.settings import Settings, load_settings
from form_service.text import plain_text
from form_service.tokens import make_token
from form_service.web.security import csrf_field_value, new_csrf_cookie
from site_config.facts import load_site
from site_config.versions import load_versions

pytestmark = pytest.mark.slow

FUZZ = settings(
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.large_base_example],
)
# A cookie value as the service issues them (a nonce and its MAC under SECRET).
COOKIE = new_csrf_cookie(load_settings({"POLICY_SECRET_KEY": SECRET,
                                        "POLICY_VAR_DIR": "/nonexistent-var"}))
RIGHTS = [right.id for right in load_site(ROOT).rights]
SHA = {lang: load_versions(ROOT / "content", lang)[-1].sha256 for lang in LANGUAGES}
SINGLE_LINE = ("name", "email", "phone", "order_number")


class Service:
    def __init__(self, client: TestClient, settings: Settings) -> None:
        self.client = client
        self.settings = settings
        self.csrf = csrf_field_value(settings, COOKIE)
        self.posts = 0

    def form_token(self, lang: str = "lv") -> str:
        return make_token(SECRET, "form", {
            "v": "1.0", "sha": SHA[lang], "lang": lang,
            "at": dt.datetime.now(dt.UTC).isoformat(), "sid": uuid.uuid4().hex,
        })

    def post(self, path: str, **kwargs: Any) -> Any:
        self.posts += 1
        return self.client.post(path, **kwargs)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    settings_ = make_settings(tmp_path_factory.mktemp("fuzz"))
    with client_for(settings_) as client:
        client.cookies.set("csrf", COOKIE)
        yield Service(client, settings_)


# --- strategies ---------------------------------------------------------------------------

_letters = st.characters(categories=["Lu", "Ll", "Nd"], max_codepoint=0x17F)
_plausible = {
    "name": st.text(_letters, min_size=1, max_size=30),
    "email": st.builds(lambda a, b: f"{a}@{b}.lv",
                       st.text(_letters, min_size=1, max_size=20),
                       st.text(_letters, min_size=1, max_size=20)),
    "request_type": st.sampled_from(RIGHTS),
    "details": st.text(min_size=1, max_size=300),
    "phone": st.sampled_from(["", "+371 20000000", "(371) 2-00"]),
    "order_number": st.text(_letters, max_size=40),
}
_anything = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(codec="utf-8"), max_size=400),
    st.text(st.sampled_from("\x00\r\n\t\x1b\x7f\u0085\u2028 a@.ā"), max_size=30),
    st.builds(lambda ch, n: ch * n, st.characters(codec="utf-8"), st.integers(0, 80_000)),
    st.sampled_from(["", " ", "x" * 200, "x" * 201, "a" * 243 + "@example.lv", "é" * 5001]),
)


@st.composite
def _field_values(draw: st.DrawFn) -> dict[str, list[str]]:
    """Each field: missing, one value or several; plausible most of the time."""
    fields: dict[str, list[str]] = {}
    for name, plausible in _plausible.items():
        how = draw(st.sampled_from(["plausible"] * 5 + ["anything", "missing", "twice"]))
        if how == "missing":
            continue
        first = draw(plausible if how != "anything" else _anything)
        fields[name] = [first] if how != "twice" else [first, draw(_anything)]
    if draw(st.integers(0, 9)) == 0:
        fields["subject"] = [draw(st.text(min_size=1, max_size=20))]
    if draw(st.booleans()):
        fields[draw(st.sampled_from(["policy_viewed_at", "policy_version", "x" * 300]))] = [
            draw(_anything)]
    return fields


def _expected(fields: dict[str, list[str]], smtputf8: bool) -> dict[str, str | None]:
    """What the store must hold for an accepted submission: the first value of each field,
    surrounding spaces stripped from one-line fields, the address in its normal form, the
    details with bidi and C1 controls neutralised, empty optional fields as NULL."""
    values: dict[str, str | None] = {}
    for name in ("name", "email", "request_type", "details", "phone", "order_number"):
        value = fields.get(name, [""])[0]
        values[name] = value.strip() if name in SINGLE_LINE else value
    values["email"] = normalise(values["email"] or "", smtputf8=smtputf8).stored
    values["details"] = plain_text(values["details"] or "")
    for optional in ("phone", "order_number"):
        values[optional] = values[optional] or None
    return values


def _check(service: Service, response: Any, fields: dict[str, list[str]], before: int) -> None:
    assert response.status_code < 500, response.text[:500]
    event(f"HTTP {response.status_code}")
    after = count_requests(service.settings)
    honeypot = bool(fields.get("subject", [""])[0].strip())
    if response.status_code != 303 or honeypot:
        assert after == before, "a refused submission stored something"
        return
    assert after == before + 1
    row = stored(service.settings, confirmation(response.headers["location"])["ref"])
    assert row is not None
    for name, value in _expected(fields, service.settings.smtputf8).items():
        assert row[name] == value, name
    # Every address the form accepts is one the mailer accepts (no e-mail that fails forever).
    assert address("", row["email"]).addr_spec


# --- the tests ----------------------------------------------------------------------------


@settings(FUZZ, max_examples=5000)
@given(fields=_field_values(), lang=st.sampled_from(LANGUAGES))
def test_fuzzed_fields(service: Service, fields: dict[str, list[str]], lang: str) -> None:
    """Any field values, missing or doubled fields: no 5xx; accepted ones stored exactly."""
    before = count_requests(service.settings)
    data = {**fields, "csrf_token": [service.csrf], "form_token": [service.form_token(lang)]}
    path = f"{PREFIXES[lang]}request/"
    _check(service, service.post(path, data=data), fields, before)


_token_spoilers = st.sampled_from(["missing", "empty", "garbage", "truncated", "flipped",
                                   "other-purpose", "other-key", "twice", "good"])


def _spoil(how: str, token: str, purpose: str, data: st.DataObject) -> list[str]:
    """The values sent for a token field, spoiled as `how` says."""
    if how == "missing":
        return []
    if how == "garbage":
        return [data.draw(st.text(max_size=200))]
    if how == "truncated":
        # Drawn independently of the token's length, which varies between runs.
        return [token[: data.draw(st.integers(0, 200)) % len(token)]]
    if how == "twice":
        return [data.draw(st.text(max_size=20)), token]
    return {
        "empty": [""],
        "flipped": [token[:-1] + ("A" if token[-1] != "A" else "B")],
        "other-purpose": [make_token(SECRET, "verify" if purpose == "form" else "form",
                                     {"c": COOKIE})],
        "other-key": [make_token("not-our-key", purpose, {"c": COOKIE})],
        "good": [token],
    }[how]


@settings(FUZZ, max_examples=2500)
@given(csrf=_token_spoilers, form=_token_spoilers, data=st.data())
def test_fuzzed_tokens(service: Service, csrf: str, form: str, data: st.DataObject) -> None:
    """Spoiled CSRF or form tokens never store anything and never fail with a 5xx."""
    before = count_requests(service.settings)
    fields = {"name": ["Anna"], "email": ["anna@example.lv"], "request_type": ["access"],
              "details": ["Lūdzu."]}
    body = {**fields,
            "csrf_token": _spoil(csrf, service.csrf, "csrf", data),
            "form_token": _spoil(form, service.form_token(), "form", data)}
    response = service.post("/request/", data={k: v for k, v in body.items() if v})
    assert response.status_code < 500
    genuine = csrf == "good" and form == "good"
    assert (response.status_code == 303) == genuine, (csrf, form, response.status_code)
    assert count_requests(service.settings) == before + genuine


_content_types = st.sampled_from([
    None,
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "multipart/form-data",
    "application/json",
    "text/plain; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1",
])


@settings(FUZZ, max_examples=2500)
@given(body=st.one_of(st.binary(max_size=2000),
                      st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=4),
                                st.integers(0, 40_000))),
       content_type=_content_types,
       lang=st.sampled_from([f"{prefix}request/" for prefix in PREFIXES.values()]))
def test_fuzzed_raw_bodies(service: Service, body: bytes, content_type: str | None,
                           lang: str) -> None:
    """Arbitrary bytes under any content type are refused cleanly and store nothing."""
    before = count_requests(service.settings)
    headers = {"Content-Type": content_type} if content_type else {}
    response = service.post(lang, content=body, headers=headers)
    assert response.status_code in (400, 403, 413)
    assert count_requests(service.settings) == before
