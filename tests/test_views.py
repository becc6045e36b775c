"""The pages of the rights request: form, post/redirect/get, confirmation, verification."""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from site_tree import LANGUAGES, PREFIXES
from starlette.testclient import TestClient
from web_support import (
    SECRET,
    FormPage,
    client_for,
    confirmation,
    count_outbox,
    count_requests,
    decide,
    event_kinds,
    make_settings,
    old_token,
    open_form,
    stored_requests,
    verify_link,
)

from form_service.settings import Settings
from form_service.tokens import read_token

REFERENCE = re.compile(r"^PO-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with client_for(settings) as client:
        yield client


def _text(page: str) -> str:
    """The page's visible words, tags removed and entities decoded, for `in` checks."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


@pytest.mark.parametrize(
    ("path", "title", "version_line", "version_url"),
    [
        ("/request/", "Pieprasījums par jūsu personas datiem",
         "konfidencialitātes politikas versiju 1.0, kas ir spēkā no 24.11.2026.",
         "/versions/1.0/"),
        ("/en/request/", "Make a request about your personal data",
         "privacy policy version 1.0, effective 24 November 2026", "/en/versions/1.0/"),
    ],
)
def test_form_renders_in_each_language(
    client: TestClient, path: str, title: str, version_line: str, version_url: str
) -> None:
    """The form shows its title, the policy version it refers to (linked), and every field."""
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    text = _text(response.text)
    assert title in text
    assert version_line in text
    assert f'<a href="{version_url}">' in response.text
    for name in ("name", "email", "details", "phone", "order_number"):
        assert f'id="{name}" name="{name}"' in response.text
        assert f'<label class="form-label" for="{name}">' in response.text
    assert response.text.count('name="request_type"') == 5


def test_type_query_preselects_the_right(client: TestClient) -> None:
    """`?type=erasure` checks the erasure radio and no other; an unknown type checks none."""
    page = client.get("/en/request/?type=erasure").text
    assert re.search(r'value="erasure"\s+aria-describedby="[^"]+" checked>', page)
    assert page.count(" checked>") == 1
    assert " checked>" not in client.get("/en/request/?type=everything").text


def test_blank_form_is_rendered_once_and_gets_fresh_tokens(client: TestClient) -> None:
    """The blank page is cached per address and version; each visitor gets their own tokens."""
    from form_service.customer import views

    pages = client.app.state.pages  # type: ignore[attr-defined]
    first = open_form(client, "/en/request/?type=access")
    second = open_form(client, "/en/request/?type=access")
    assert len(pages.blank_forms) == 1
    assert first.form_token != second.form_token
    assert read_token(SECRET, "form", second.form_token, 60)["lang"] == "en"

    def without_tokens(page: FormPage) -> str:
        return page.html.replace(page.form_token, "").replace(page.csrf, "")

    assert without_tokens(first) == without_tokens(second)
    for slot in (views._CSRF_SLOT, views._TOKEN_SLOT):
        assert slot not in first.html
    latvian = client.get("/request/?type=access").text
    assert len(pages.blank_forms) == 2 and 'lang="lv"' in latvian


def test_version_query_names_a_real_version_or_falls_back(client: TestClient) -> None:
    """`?v=1.0` is honoured; a version that does not exist falls back to the one in force."""
    assert 'href="/versions/1.0/"' in client.get("/request/?v=1.0").text
    assert 'href="/versions/1.0/"' in client.get("/request/?v=9.9").text
    token = open_form(client, "/request/?v=9.9").form_token
    assert read_token(SECRET, "form", token, 60)["v"] == "1.0"


def test_language_switcher_links_the_twin_page_with_its_query(client: TestClient) -> None:
    """The switcher on /request/?type=access&v=1.0 links /en/request/ with the same query."""
    page = client.get("/request/?type=access&v=1.0").text
    assert 'href="/en/request/?type=access&amp;v=1.0" hreflang="en"' in page
    assert 'href="/request/?type=access&amp;v=1.0" hreflang="lv"' in page


def test_russian_form_is_in_russian_and_switches_to_every_language(client: TestClient) -> None:
    """/ru/request/ is in Russian, and its switcher links the form in every language."""
    page = client.get("/ru/request/?type=erasure").text
    assert '<html lang="ru">' in page and "Отправить запрос" in page
    assert "Удаление ваших данных" in page
    found = re.findall(r'href="([^"]*)" hreflang="(\w+)"', page)
    assert found == [(f"{PREFIXES[lang]}request/?type=erasure", lang) for lang in LANGUAGES]


def test_form_looks_like_the_policy_site(client: TestClient, settings: Settings) -> None:
    """The page links the site's hashed Material stylesheets and policy.css, and they exist."""
    page = client.get("/request/").text
    sheets = re.findall(r'<link rel="stylesheet" href="([^"]+)">', page)
    assert any(re.fullmatch(r"/assets/stylesheets/main\.[0-9a-f]+\.min\.css", s) for s in sheets)
    assert any(re.fullmatch(r"/assets/stylesheets/palette\.[0-9a-f]+\.min\.css", s) for s in sheets)
    assert "/assets/stylesheets/policy.css" in sheets
    for sheet in sheets:
        assert client.get(sheet).status_code == 200, sheet
    assert 'class="md-header md-header--shadow"' in page
    assert 'data-md-color-primary="blue-grey"' in page


def test_form_token_records_what_was_shown(client: TestClient) -> None:
    """The form token carries the version, its SHA-256, the language, when and a fresh id."""
    first = read_token(SECRET, "form", open_form(client, "/en/request/").form_token, 60)
    second = read_token(SECRET, "form", open_form(client, "/en/request/").form_token, 60)
    assert first["v"] == "1.0" and first["lang"] == "en"
    assert re.fullmatch(r"[0-9a-f]{64}", first["sha"])
    viewed = dt.datetime.fromisoformat(first["at"])
    assert abs(dt.datetime.now(dt.UTC) - viewed) < dt.timedelta(minutes=1)
    assert first["sid"] != second["sid"]


def test_errors_use_the_error_summary_pattern(client: TestClient) -> None:
    """An invalid form comes back with a focused summary linking each field, and inline messages."""
    form = open_form(client, "/en/request/")
    response = client.post("/en/request/", data=form.fields(name="", email="nope",
                                                             request_type=""))
    assert response.status_code == 400
    page = response.text
    assert "<title>Error: " in page
    summary = re.search(r'<div class="form-error-summary"([^>]*)>(.*?)</div>', page, re.S)
    assert summary is not None
    assert 'role="alert"' in summary[1] and 'tabindex="-1"' in summary[1]
    assert "autofocus" in summary[1]
    assert "There is a problem" in summary[2]
    assert '<a href="#name">Enter your full name</a>' in summary[2]
    assert '<a href="#email">Enter an e-mail address in the correct format' in summary[2]
    assert '<a href="#request_type-0">Choose what you would like us to do</a>' in summary[2]
    name_input = re.search(r'<input[^>]*id="name"[^>]*>', page)
    assert name_input is not None
    assert 'aria-invalid="true"' in name_input[0]
    assert 'aria-describedby="name-hint name-error"' in name_input[0]
    assert '<p id="name-error" class="form-error-message">' in page
    # What the customer typed is kept.
    assert 'value="nope"' in page
    assert count_requests(client.app.state.web.settings) == 0  # type: ignore[attr-defined]


def test_valid_submission_redirects_to_the_confirmation(
    client: TestClient, settings: Settings
) -> None:
    """A valid POST is stored, then 303 to a page with the reference, due date and next step."""
    form = open_form(client, "/en/request/")
    response = client.post("/en/request/", data=form.fields(phone="+371 20000000"))
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/en/request/sent/")
    # Nothing personal in the address: only a signed reference and date.
    assert "anna" not in location.lower() and "example" not in location
    payload = confirmation(location)
    assert REFERENCE.match(payload["ref"])

    [row] = stored_requests(settings)
    assert row["reference"] == payload["ref"]
    assert row["due_at"] == payload["due"]
    assert row["name"] == "Anna Bērziņa" and row["email"] == "anna@example.lv"
    assert row["phone"] == "+371 20000000" and row["order_number"] is None
    assert row["language"] == "en" and row["policy_language"] == "en"
    assert row["policy_version"] == "1.0" and len(row["policy_sha256"]) == 64
    token = read_token(SECRET, "form", form.form_token, 60)
    viewed = dt.datetime.fromisoformat(row["policy_viewed_at"]).replace(tzinfo=dt.UTC)
    assert viewed == dt.datetime.fromisoformat(token["at"])

    page = client.get(location)
    assert page.status_code == 200
    text = _text(page.text)
    assert payload["ref"] in text
    due = dt.date.fromisoformat(payload["due"])
    assert f"We will answer by {due.day} {due:%B} {due.year} at the latest." in text
    assert "Check your e-mail" in text


def test_confirmation_date_is_formatted_per_language(client: TestClient) -> None:
    """The Latvian confirmation page writes the due date as DD.MM.YYYY."""
    form = open_form(client)
    location = client.post("/request/", data=form.fields()).headers["location"]
    due = dt.date.fromisoformat(confirmation(location)["due"])
    assert f"ne vēlāk kā {due:%d.%m.%Y}." in _text(client.get(location).text)


def test_double_submit_gives_the_same_reference(client: TestClient, settings: Settings) -> None:
    """Sending the same form twice (double click, back and resend) stores one request."""
    form = open_form(client)
    first = client.post("/request/", data=form.fields())
    second = client.post("/request/", data=form.fields())
    assert first.status_code == second.status_code == 303
    assert confirmation(first.headers["location"])["ref"] == confirmation(
        second.headers["location"])["ref"]
    assert count_requests(settings) == 1


def test_confirmation_address_must_be_ours(client: TestClient) -> None:
    """A made-up or tampered confirmation address is a clear 404 page, not an error."""
    form = open_form(client)
    location = client.post("/request/", data=form.fields()).headers["location"]
    tampered = location[:-3] + ("AAA" if not location.endswith("AAA") else "BBB")
    for address in (tampered, "/request/sent/PO-1234-5678"):
        response = client.get(address)
        assert response.status_code == 404
        assert "Lapa nav atrasta" in response.text


def _submitted_reference(client: TestClient, path: str = "/en/request/") -> str:
    form = open_form(client, path)
    return str(confirmation(client.post(path, data=form.fields()).headers["location"])["ref"])


def test_opening_the_link_changes_nothing(client: TestClient, settings: Settings) -> None:
    """GET and HEAD of the link, repeated, with or without cookies, leave the request
    unconfirmed: a mail scanner that fetches every link confirms nothing."""
    reference = _submitted_reference(client, "/en/request/")
    link = verify_link(reference)
    for _ in range(3):
        assert client.get(link).status_code == 200
        assert client.head(link).status_code == 200
        client.cookies.clear()
        assert client.get(link, headers={"Cookie": ""}).status_code == 200
    [row] = stored_requests(settings)
    assert row["status"] == "unverified" and row["verified_at"] is None
    assert count_outbox(settings, "ticket") == 0


def test_link_page_says_what_was_asked_and_offers_two_buttons(client: TestClient) -> None:
    """The page names the reference, the request type and the date, in the request's language,
    and has the two buttons: confirm, and "I did not ask for this"."""
    reference = _submitted_reference(client, "/en/request/")
    response = client.get(verify_link(reference))
    text = _text(response.text)
    assert "Confirm your request" in text and reference in text
    assert "Request Access to your personal data" in text
    assert re.search(r"Sent on \d{1,2} \w+ \d{4}", text), text
    assert re.search(r'<form method="post" action="/request/verify/[^"]+"', response.text)
    assert 'name="decision" value="confirm"' in response.text
    assert 'name="decision" value="discard"' in response.text
    assert response.headers["cache-control"] == "no-store"


def test_confirm_button_verifies_and_queues_the_ticket(
    client: TestClient, settings: Settings
) -> None:
    """Pressing "Confirm my request" (a same-origin POST with the page's CSRF token) verifies
    the request once, queues ticket and acknowledgement, and the link then says so."""
    reference = _submitted_reference(client, "/en/request/")
    link = verify_link(reference)
    response = decide(client, link, "confirm")
    assert response.status_code == 303 and response.headers["location"] == link.split("?")[0]
    [row] = stored_requests(settings)
    assert row["status"] == "verified" and row["verified_at"] is not None
    assert count_outbox(settings, "ticket") == 1 and count_outbox(settings, "ack") == 1
    text = _text(client.get(link).text)
    assert "Request confirmed" in text and "We will answer by" in text
    # Pressing it again (a second tab, the back button) changes nothing more.
    csrf = open_form(client).csrf
    assert client.post(link, data={"csrf_token": csrf, "decision": "confirm"}).status_code == 303
    assert count_outbox(settings, "ticket") == 1


def test_discard_button_keeps_the_request_from_staff(
    client: TestClient, settings: Settings
) -> None:
    """"I did not ask for this" discards the request: never verified, no ticket, an event
    records why, and the link says so; confirming afterwards does nothing."""
    reference = _submitted_reference(client, "/request/")
    link = verify_link(reference)
    assert decide(client, link, "discard").status_code == 303
    [row] = stored_requests(settings)
    assert row["status"] == "discarded" and row["verified_at"] is None
    assert count_outbox(settings, "ticket") == 0
    assert event_kinds(settings, reference) == ["created", "discarded"]
    assert "Pieprasījums atcelts" in _text(client.get(link).text)
    csrf = open_form(client).csrf  # the page has no buttons now; a token of the same cookie
    assert client.post(link, data={"csrf_token": csrf, "decision": "confirm"}).status_code == 303
    assert stored_requests(settings)[0]["status"] == "discarded"


@pytest.mark.parametrize("case", ["no cookie", "foreign origin", "no origin", "bad decision"])
def test_the_button_alone_cannot_be_forged(
    client: TestClient, settings: Settings, case: str
) -> None:
    """The confirming POST needs the page's CSRF cookie and field, our exact Origin and a
    known decision; otherwise it is refused, in the request's language, and nothing changes."""
    reference = _submitted_reference(client, "/en/request/")
    link = verify_link(reference)
    page = client.get(link)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    data = {"csrf_token": csrf[1], "decision": "bogus" if case == "bad decision" else "confirm"}
    headers = {"Origin": "https://attacker.example"} if case == "foreign origin" else {}
    if case == "no cookie":
        client.cookies.clear()
    if case == "no origin":
        headers = {"Origin": ""}
        del client.headers["origin"]
    response = client.post(link, data=data, headers=headers)
    assert response.status_code in (400, 403)
    if case == "no cookie":
        assert "press the button again" in _text(response.text).lower()
    assert stored_requests(settings)[0]["status"] == "unverified"


def test_expired_verification_link_says_how_to_get_a_new_one(
    client: TestClient, settings: Settings
) -> None:
    """A genuine link older than its lifetime is refused with 410 and a way forward."""
    reference = _submitted_reference(client, "/en/request/")
    age = settings.verify_link_max_age_hours * 3600 + 60
    response = client.get(f"/request/verify/{old_token('verify', {'ref': reference}, age)}")
    assert response.status_code == 410
    text = _text(response.text)
    assert "The confirmation link has expired" in text
    assert "send the form again" in text
    assert 'href="/en/request/"' in response.text
    assert stored_requests(settings)[0]["status"] == "unverified"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "eyJyZWYiOiJQTy0xMjM0LTU2NzgifQ.aaaaaa.bbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "x" * 2000,
    ],
)
def test_garbage_verification_link_is_a_clear_404(client: TestClient, token: str) -> None:
    """A link that is not ours is a 404 page saying to copy the whole link, never a traceback."""
    response = client.get(f"/request/verify/{token}")
    assert response.status_code == 404
    assert "nokopējiet visu saiti" in _text(response.text)


def test_link_signed_with_another_key_or_purpose_is_refused(client: TestClient) -> None:
    """A verify token signed with another secret, or a form token, does not verify anything."""
    reference = _submitted_reference(client)
    wrong_key = "another-secret"
    assert client.get(verify_link(reference, wrong_key)).status_code == 404
    form_token = open_form(client).form_token
    assert client.get(f"/request/verify/{form_token}").status_code == 404


def test_verification_of_a_deleted_request_is_expired(client: TestClient) -> None:
    """A genuine link whose request no longer exists (purged) gets the expired page."""
    assert client.get(verify_link("PO-0000-0000")).status_code == 410


def test_request_without_slash_redirects(client: TestClient) -> None:
    """/en/request (no slash) redirects to the form, keeping the query."""
    response = client.get("/en/request?type=access")
    assert response.status_code == 308
    assert response.headers["location"] == "/en/request/?type=access"


def test_static_site_is_served_with_our_404(client: TestClient) -> None:
    """The policy pages are served from the built site; a missing page gets our 404 page."""
    assert "Konfidencialitātes politika" in client.get("/").text
    missing = client.get("/en/no-such-page/")
    assert missing.status_code == 404
    assert "Page not found" in missing.text


@pytest.mark.browser
def test_form_in_chromium_is_accessible_and_keyboard_usable(tmp_path: Path) -> None:
    """In Chromium: no WCAG violations, no CSP violations, and after an error focus is on
    the summary, whose link moves focus to the field."""
    from browser import axe_violations, chromium
    from web_support import served

    settings = make_settings(tmp_path)
    with served(settings) as base, chromium() as browser:
        page = browser.new_page(viewport={"width": 412, "height": 900})
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        for path in ("/", "/en/request/?type=access"):
            page.goto(base + path)
            assert axe_violations(page) == [], path
        page.fill("#email", "not-an-address")
        page.keyboard.press("Enter")
        page.wait_for_selector(".form-error-summary")
        assert page.title().startswith("Error: ")
        assert page.evaluate("document.activeElement.className") == "form-error-summary"
        assert axe_violations(page) == []
        page.click(".form-error-summary a[href='#email']")
        assert page.evaluate("document.activeElement.id") == "email"
        assert not [line for line in console if "Content Security Policy" in line], console
