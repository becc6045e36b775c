"""Abuse and attack defences: tokens, CSRF, origin, body size, honeypot, headers, errors."""

from __future__ import annotations

import datetime as dt
import gzip
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from starlette.testclient import TestClient
from web_support import (
    SECRET,
    client_for,
    confirmation,
    count_requests,
    make_settings,
    old_token,
    open_form,
    stored_requests,
)

from form_service.records import NewRequest, RequestRecord
from form_service.settings import Settings
from form_service.store import Store
from form_service.tokens import make_token, read_token
from form_service.web.ratelimit import RateLimits


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


def _tampered(token: str) -> str:
    """The token with its last two characters changed."""
    return token[:-2] + ("AA" if not token.endswith("AA") else "BB")


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match is not None
    return match[1]


# --- the form token -------------------------------------------------------------------


def _form_payload() -> dict[str, str]:
    return {"v": "1.0", "sha": "0" * 64, "lang": "lv",
            "at": dt.datetime.now(dt.UTC).isoformat(), "sid": "a" * 32}


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (lambda t: "", "Mēs nevarējām noteikt, kuru konfidencialitātes politikas versiju"),
        (lambda t: _tampered(t), "Veidlapu nevarēja pārbaudīt"),
        (lambda t: make_token("someone-elses-key", "form", _form_payload()),
         "Veidlapu nevarēja pārbaudīt"),
        (lambda t: make_token(SECRET, "csrf", _form_payload()), "Veidlapu nevarēja pārbaudīt"),
        (lambda t: make_token(SECRET, "form", {**_form_payload(), "v": "9.9"}),
         "Veidlapu nevarēja pārbaudīt"),
        (lambda t: make_token(SECRET, "form", {**_form_payload(), "at": "yesterday"}),
         "Veidlapu nevarēja pārbaudīt"),
        (lambda t: old_token("form", _form_payload(), 25 * 3600),
         "Veidlapa bija atvērta ilgāk par diennakti"),
    ],
    ids=["missing", "tampered", "forged", "other-purpose", "unknown-version", "bad-time",
         "expired"],
)
def test_bad_form_token_is_refused_and_nothing_stored(
    client: TestClient, settings: Settings, token: object, message: str
) -> None:
    """A missing, tampered, forged or expired form token re-renders the form with a new one."""
    form = open_form(client)
    bad = token(form.form_token)  # type: ignore[operator]
    response = client.post("/request/", data=form.fields(form_token=bad))
    assert response.status_code == 400
    assert message in response.text
    assert 'role="alert"' in response.text
    fresh = _hidden(response.text, "form_token")
    assert fresh not in (bad, form.form_token)
    read_token(SECRET, "form", fresh, 60)
    assert 'value="Anna Bērziņa"' in response.text  # what was typed is kept
    assert count_requests(settings) == 0
    # The fresh form goes through.
    fixed = client.post("/request/", data=form.fields(form_token=fresh))
    assert fixed.status_code == 303


def test_policy_viewed_at_comes_only_from_the_token(client: TestClient, settings: Settings) -> None:
    """A `viewed_at` or version posted as a field is ignored: only the signed token counts."""
    form = open_form(client)
    fields = form.fields(policy_viewed_at="2000-01-01T00:00:00+00:00", policy_version="0.1",
                         policy_sha256="f" * 64)
    assert client.post("/request/", data=fields).status_code == 303
    [row] = stored_requests(settings)
    assert row["policy_version"] == "1.0"
    assert not row["policy_viewed_at"].startswith("2000")
    assert row["policy_sha256"] == read_token(SECRET, "form", form.form_token, 60)["sha"]


# --- CSRF -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["no-cookie", "no-field", "other-cookie", "tampered", "expired"])
def test_csrf_failure_is_403_and_nothing_stored(
    client: TestClient, settings: Settings, case: str
) -> None:
    """Without the cookie and a matching, fresh, signed field, a POST is refused with 403."""
    form = open_form(client)
    fields = form.fields()
    if case == "no-cookie":
        client.cookies.clear()
    elif case == "no-field":
        del fields["csrf_token"]
    elif case == "other-cookie":
        client.cookies.clear()
        client.cookies.set("csrf", "B" * 43)
    elif case == "tampered":
        fields["csrf_token"] = _tampered(form.csrf)
    else:
        cookie = client.cookies.get("csrf")
        fields["csrf_token"] = old_token("csrf", {"c": cookie}, 25 * 3600)
    response = client.post("/request/", data=fields)
    assert response.status_code == 403
    assert "Veidlapas derīgums ir beidzies" in response.text
    assert count_requests(settings) == 0


def test_csrf_cookie_flags(client: TestClient) -> None:
    """Over http the cookie is `csrf`, HttpOnly, SameSite=Lax, Path=/ and not Secure."""
    cookie = client.get("/request/").headers["set-cookie"]
    assert cookie.startswith("csrf=")
    attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "path=/", "samesite=lax"} <= attributes
    assert "secure" not in attributes


def test_csrf_cookie_under_https_is_host_prefixed_and_secure(tmp_path: Path) -> None:
    """Under an https base URL the cookie is `__Host-csrf`, Secure, Path=/ and has no Domain."""
    settings = make_settings(tmp_path, POLICY_BASE_URL="https://privacy.example.lv")
    with client_for(settings) as client:
        form = open_form(client)
        cookie = client.get("/request/").headers["set-cookie"]
        assert cookie.startswith("__Host-csrf=")
        attributes = {a.strip().lower() for a in cookie.split(";")[1:]}
        assert {"secure", "httponly", "path=/", "samesite=lax"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
        assert client.post("/request/", data=form.fields()).status_code == 303


def test_csrf_cookie_is_kept_across_pages(client: TestClient) -> None:
    """A second form page reuses the visitor's cookie, so two open tabs both work."""
    first = open_form(client)
    second = open_form(client, "/en/request/")
    assert client.post("/request/", data=first.fields()).status_code == 303
    assert client.post("/en/request/", data=second.fields()).status_code == 303


# --- origin ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:8000.evil.example"},
        {"Origin": "https://127.0.0.1:8000"},
        {"Origin": "http://127.0.0.1:8001"},
        {"Origin": "ftp://127.0.0.1:8000"},
        {"Origin": "http://127.0.0.1"},
        {"Origin": "http://127.0.0.1:8000/request/"},
        {"Origin": "http://evil.example", "Host": "evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {},
    ],
)
def test_cross_site_post_is_refused(
    client: TestClient, settings: Settings, headers: dict[str, str]
) -> None:
    """A POST whose Origin is not exactly the base URL's scheme, host and port (whatever the
    Host header says), whose Sec-Fetch-Site names another site, or that carries neither
    header, is refused with 403."""
    form = open_form(client)
    del client.headers["origin"]
    response = client.post("/request/", data=form.fields(), headers=headers)
    assert response.status_code == 403
    assert "Pieprasījums noraidīts" in response.text
    assert count_requests(settings) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:8000", "Sec-Fetch-Site": "same-origin"},
        {"Origin": "HTTP://127.0.0.1:8000"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
    ],
)
def test_same_origin_post_is_accepted(client: TestClient, headers: dict[str, str]) -> None:
    """Our own origin (scheme and host in any case), or a browser's Fetch Metadata saying
    same-origin or user-initiated, passes."""
    form = open_form(client)
    del client.headers["origin"]
    assert client.post("/request/", data=form.fields(), headers=headers).status_code == 303


def test_origin_on_an_https_service_must_be_https(tmp_path: Path) -> None:
    """Behind a proxy the service speaks http but its base URL is https: only the https
    origin is ours, on its default port written or not."""
    settings = make_settings(tmp_path, POLICY_BASE_URL="https://privatums.example.lv")
    with client_for(settings) as client:
        for origin, status in (("http://privatums.example.lv", 403),
                               ("https://privatums.example.lv:443", 303),
                               ("https://privatums.example.lv", 303)):
            form = open_form(client)
            response = client.post("/request/", data=form.fields(email=f"a{status}@example.lv"),
                                   headers={"Origin": origin})
            assert response.status_code == status, origin


def test_an_attacker_chosen_csrf_cookie_is_not_adopted(client: TestClient,
                                                       settings: Settings) -> None:
    """A csrf cookie the service did not issue (planted from a sibling subdomain, say) is
    replaced by a fresh one, and a POST carrying it is refused even with a field signed
    for it."""
    planted = "A" * 43
    client.cookies.set("csrf", planted)
    page = client.get("/request/")
    issued = page.cookies.get("csrf")
    assert issued and issued != planted
    form = open_form(client)
    client.cookies.set("csrf", planted)
    forged = make_token(SECRET, "csrf", {"c": planted})
    response = client.post("/request/", data=form.fields(csrf_token=forged))
    assert response.status_code == 403
    assert count_requests(settings) == 0


# --- body size ------------------------------------------------------------------------


def test_large_body_is_413_from_content_length(client: TestClient, settings: Settings) -> None:
    """A body declared larger than 64 KiB is refused with the 413 page before it is read."""
    form = open_form(client, "/en/request/")
    response = client.post("/en/request/", data=form.fields(details="x" * 70_000))
    assert response.status_code == 413
    assert "The request is too large" in response.text
    assert count_requests(settings) == 0


def test_large_body_is_413_while_streaming(client: TestClient, settings: Settings) -> None:
    """A chunked body without Content-Length is counted as it arrives and cut off at 64 KiB."""
    form = open_form(client)
    head = "&".join(f"{k}={v}" for k, v in form.fields().items() if k != "details")

    def chunks() -> Iterator[bytes]:
        yield (head + "&details=").encode()
        for _ in range(100):
            yield b"x" * 1024

    response = client.post("/request/", content=chunks(),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 413
    assert "Pieprasījums ir pārāk liels" in response.text
    assert count_requests(settings) == 0


def test_malformed_content_length_is_400(client: TestClient) -> None:
    """A Content-Length that is not a number is a 400 page, not an error."""
    headers = {b"Content-Length": "²".encode("latin-1")}
    response = client.post("/request/", content=b"a=b", headers=headers)
    assert response.status_code == 400


def test_uploaded_file_is_refused(client: TestClient, settings: Settings) -> None:
    """A multipart body with a file in it is a 400 page (the form has no file field)."""
    form = open_form(client)
    response = client.post("/request/", data=form.fields(), files={"name": ("a.txt", b"x")})
    assert response.status_code == 400
    assert count_requests(settings) == 0


def test_raw_utf8_in_an_urlencoded_body_is_read_as_utf8(client: TestClient,
                                                          settings: Settings) -> None:
    """A client that sends "José" as raw UTF-8 bytes (not %-escaped) gets José stored,
    not Latin-1 mojibake ("JosÃ©")."""
    form = open_form(client)
    fields = form.fields(name="José Ņikitins")
    body = "&".join(f"{k}={v}" if k == "name" else f"{k}={quote_plus(v)}"
                    for k, v in fields.items()).encode("utf-8")
    response = client.post("/request/", content=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 303
    assert stored_requests(settings)[0]["name"] == "José Ņikitins"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/x-www-form-urlencoded", b"name=Jos\xe9"),
    ("application/x-www-form-urlencoded", b"name=Jos%E9"),
    ("application/x-www-form-urlencoded; charset=latin-1", b"name=Jose"),
    ("multipart/form-data; boundary=b; charset=utf-7", b"--b--\r\n"),
])
def test_a_body_in_another_charset_is_refused(client: TestClient, settings: Settings,
                                              content_type: str, body: bytes) -> None:
    """Bytes that are not UTF-8, or a body declaring another charset, are a 400 page:
    never stored as something the customer did not type."""
    response = client.post("/request/", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert "Pieprasījumu nevarēja nolasīt" in response.text
    assert count_requests(settings) == 0


def test_a_multipart_part_in_utf7_is_refused(client: TestClient, settings: Settings) -> None:
    """A part that declares UTF-7 (the classic way past markup filters) is refused, even
    with every token right."""
    form = open_form(client)
    parts = []
    for name, value in form.fields().items():
        charset = "; charset=utf-7" if name == "details" else ""
        parts.append(f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n'
                     f"Content-Type: text/plain{charset}\r\n\r\n{value}\r\n")
    body = ("".join(parts) + "--b--\r\n").encode()
    response = client.post("/request/", content=body,
                           headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert response.status_code == 400
    # The same form as UTF-8 parts is accepted.
    ok = body.replace(b"; charset=utf-7", b"; charset=utf-8")
    assert client.post("/request/", content=ok, headers={
        "Content-Type": "multipart/form-data; boundary=b"}).status_code == 303
    assert count_requests(settings) == 1


# --- small ones ---------------------------------------------------------------------


@pytest.mark.parametrize(("path", "allow"), [
    ("/request/", "GET, HEAD, POST"), ("/en/request/", "GET, HEAD, POST"),
    ("/ru/request/", "GET, HEAD, POST"),
    ("/request/verify/some.token", "GET, HEAD, POST"), ("/healthz", "GET, HEAD"),
])
def test_405_names_the_methods_the_address_takes(client: TestClient, path: str,
                                                 allow: str) -> None:
    """A method an address does not take is 405 with an Allow header that is true of it."""
    for method in ("PUT", "DELETE", "PATCH", "BREW"):
        response = client.request(method, path)
        assert response.status_code == 405 and response.headers["allow"] == allow, method


@pytest.mark.parametrize("path", ["/versions", "/en", "/en/versions", "/request", "/en/request",
                                  "/ru", "/ru/request"])
def test_no_redirect_copies_the_host_header(client: TestClient, path: str) -> None:
    """A redirect to the address with its slash is relative: a forged Host header cannot
    turn it into a link to another site."""
    response = client.get(path, headers={"Host": "evil.example"})
    assert response.status_code in (307, 308)
    location = response.headers["location"]
    assert location.startswith("/") and "evil" not in location


def test_the_gzipped_sitemap_is_served_as_gzip(client: TestClient) -> None:
    """sitemap.xml.gz is a gzip file (application/gzip), not XML that is secretly gzip."""
    response = client.get("/sitemap.xml.gz")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert "content-encoding" not in response.headers
    assert gzip.decompress(response.content).startswith(b"<?xml")


# --- honeypot -------------------------------------------------------------------------


def test_filled_honeypot_looks_like_success_but_stores_nothing(
    client: TestClient, settings: Settings
) -> None:
    """A robot that fills the hidden field gets a normal-looking confirmation; nothing is stored."""
    form = open_form(client)
    assert '<label for="subject">' in form.html
    response = client.post("/request/", data=form.fields(subject="http://spam.example"))
    assert response.status_code == 303
    reference = confirmation(response.headers["location"])["ref"]
    assert re.fullmatch(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}", reference)
    assert client.get(response.headers["location"]).status_code == 200
    assert count_requests(settings) == 0


def test_a_filled_honeypot_on_an_invalid_form_gets_a_persons_answer(
    client: TestClient, settings: Settings
) -> None:
    """An invalid form with the honeypot filled gets the same 400 page with errors that a
    person gets, so the robot learns nothing from the difference."""
    form = open_form(client, "/en/request/")
    robot = client.post("/en/request/", data=form.fields(email="not-an-address",
                                                         subject="http://spam.example"))
    person = client.post("/en/request/", data=open_form(client, "/en/request/").fields(
        email="not-an-address"))
    assert robot.status_code == person.status_code == 400
    assert "Enter an e-mail address in the correct format" in robot.text
    assert count_requests(settings) == 0


# --- headers on every response ----------------------------------------------------------


class _BrokenStore(Store):
    """A real store whose write fails, as a full disk would make it."""

    def create_request(self, new: NewRequest) -> tuple[RequestRecord, bool]:
        raise OSError("No space left on device")


def _assert_security_headers(response: object, *, https: bool = False) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    csp = headers["content-security-policy"]
    assert "'unsafe-inline'" not in csp
    for directive in ("default-src 'self'", "object-src 'none'", "base-uri 'none'",
                      "frame-ancestors 'none'", "form-action 'self'"):
        assert directive in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] in ("same-origin", "no-referrer")
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/") or "xml" in content_type or "json" in content_type:
        assert "charset=utf-8" in content_type, content_type
    if https:
        hsts = headers["strict-transport-security"]
        assert int(re.search(r"max-age=(\d+)", hsts)[1]) >= 31536000  # type: ignore[index]
    else:
        assert "strict-transport-security" not in headers


def test_security_headers_on_every_kind_of_response(tmp_path: Path) -> None:
    """200, 303, 403, 404, 405, 413, 429, 500, static files and /healthz all carry the headers."""
    settings = make_settings(tmp_path)
    store = _BrokenStore(settings.database_url)
    limits = RateLimits(per_ip="1/hour")
    try:
        with client_for(settings, store=store, rate_limits=limits) as client:
            form = open_form(client)
            responses = {
                200: client.get("/request/"),
                404: client.get("/no/such/page"),
                405: client.put("/request/"),
                413: client.post("/request/", content=b"x" * 70_000),
                403: client.post("/request/", data={"name": "x"}),
                500: client.post("/request/", data=form.fields()),
            }
            responses[429] = client.post("/request/", data=form.fields())
            for status, response in responses.items():
                assert response.status_code == status, (status, response.text[:200])
                _assert_security_headers(response)
            for path in ("/", "/en/", "/assets/stylesheets/policy.css", "/versions.json",
                         "/feed.xml", "/request/assets/form.css", "/healthz"):
                response = client.get(path)
                assert response.status_code == 200, path
                _assert_security_headers(response)
            assert "Retry-After" in responses[429].headers
    finally:
        store.close()


def test_server_error_is_a_plain_page_in_the_customers_language(tmp_path: Path) -> None:
    """An unexpected failure shows a short page in the URL's language, never a traceback."""
    settings = make_settings(tmp_path)
    store = _BrokenStore(settings.database_url)
    try:
        with client_for(settings, store=store) as client:
            for path, words in (("/request/", "Atvainojiet, radās kļūda"),
                                ("/en/request/", "Sorry, something went wrong")):
                response = client.post(path, data=open_form(client, path).fields())
                assert response.status_code == 500
                assert words in response.text
                assert "Traceback" not in response.text and "OSError" not in response.text
                assert response.headers["content-type"] == "text/html; charset=utf-8"
    finally:
        store.close()


def test_hsts_only_under_https(tmp_path: Path) -> None:
    """Strict-Transport-Security is sent when the base URL is https, on pages and errors."""
    settings = make_settings(tmp_path, POLICY_BASE_URL="https://privacy.example.lv")
    with client_for(settings) as client:
        for path in ("/request/", "/missing", "/assets/stylesheets/policy.css"):
            _assert_security_headers(client.get(path), https=True)


def test_csp_allows_the_sites_inline_scripts_by_hash(client: TestClient) -> None:
    """Each inline script of the built site is allowed by its SHA-256, nothing inline else."""
    import base64
    import hashlib

    page = client.get("/").text
    csp = client.get("/").headers["content-security-policy"]
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert scripts
    for body in scripts:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp


def test_pages_with_tokens_are_not_cached(client: TestClient) -> None:
    """Form, confirmation and error pages say Cache-Control: no-store."""
    form = open_form(client)
    location = client.post("/request/", data=form.fields()).headers["location"]
    for response in (client.get("/request/"), client.get(location), client.get("/missing")):
        assert response.headers["cache-control"] == "no-store"
