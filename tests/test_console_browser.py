"""The staff console in Debian's Chromium, with Chromium's virtual authenticator as the passkey
(CDP WebAuthn.addVirtualAuthenticator through Playwright): enrol, sign in, sign out, a second
member, an expired invite, a removed member, every URL without a session, axe-core on every
page in every language, the export's download, and a keyboard-only round."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from browser import axe_violations, chromium
from delivery_support import new_request
from site_tree import LANGUAGES
from web_support import make_settings, served

from form_service.records import RequestRecord
from form_service.staff.members import Members
from form_service.store import Store

pytestmark = pytest.mark.browser
NOW = dt.datetime.now(dt.UTC)


@dataclass
class Site:
    base: str
    store: Store

    @property
    def members(self) -> Members:
        return Members(self.store)

    def request(self, days_ago: float, **changes: Any) -> RequestRecord:
        at = NOW - dt.timedelta(days=days_ago)
        record, _ = self.store.create_request(new_request(submitted_at=at, **changes))
        result = self.store.verify(record.reference, at + dt.timedelta(minutes=5))
        assert result is not None
        return result[0]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("console-browser")
    # localhost: a secure context for passkeys, and a domain (WebAuthn refuses IP addresses).
    settings = make_settings(folder, POLICY_BASE_URL="http://localhost:8000",
                             POLICY_STAFF_CONSOLE="on")
    store = Store(settings.database_url)
    store.migrate()
    with served(settings, host_name="localhost") as base:
        yield Site(base, store)
    store.close()


def _page(browser: Any) -> Any:
    """A page in a fresh context, with a virtual platform authenticator of its own."""
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    cdp = context.new_cdp_session(page)  # kept by Playwright while the page lives
    cdp.send("WebAuthn.enable", {"enableUI": False})
    cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
        "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    return page


def _clean(page: Any, what: str) -> None:
    assert axe_violations(page) == [], what


def _enrol(page: Any, site: Site, email: str, name: str, lang: str = "en") -> None:
    _, token = site.members.invite(email, name, lang, dt.datetime.now(dt.UTC))
    page.goto(f"{site.base}/staff/enrol/{token}")
    _clean(page, "enrolment page")
    page.click("[data-start]")
    page.wait_for_url(f"{site.base}/staff/")


def _sign_in(page: Any, site: Site) -> None:
    page.goto(f"{site.base}/staff/sign-in")
    page.click("[data-start]")
    page.wait_for_url(f"{site.base}/staff/")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_console_page_passes_axe(browser: Any, site: Site, lang: str) -> None:
    """Enrolment, overview, list, a request, both previews, export, sign-in and an error page
    have no axe-core violations (WCAG 2.2 A/AA), in every language of the site."""
    late = site.request(40, language=lang)
    site.request(3, request_type="erasure")
    page = _page(browser)
    _enrol(page, site, f"axe-{lang}@pulkstenu-outlets.lv", "Axe Tester", lang)
    assert page.locator("html").get_attribute("lang") == lang
    _clean(page, "overview")
    assert page.locator(".console-late .console-overdue").count() >= 1
    page.goto(f"{site.base}/staff/requests?status=all")
    _clean(page, "list")
    page.goto(f"{site.base}/staff/requests/{late.reference}")
    _clean(page, "request")
    page.fill("#close-reason", "Mums par jums nav datu.")
    page.check("#outcome-refused")
    with page.expect_navigation():
        page.locator("#close button[type=submit]").click()
    _clean(page, "refusal preview")
    assert page.locator(".console-mail__body").count() == 1
    fresh = site.request(2, language=lang)
    page.goto(f"{site.base}/staff/requests/{fresh.reference}")
    page.fill("#extend-reason", "Dati ir vairākās sistēmās.")
    with page.expect_navigation():
        page.locator("#extend button[type=submit]").click()
    _clean(page, "extension preview")
    page.goto(f"{site.base}/staff/export")
    _clean(page, "export")
    page.goto(f"{site.base}/staff/requests/PO-0000-0000")
    _clean(page, "no such request")
    with page.expect_navigation():
        page.locator(".console-signout button").click()
    assert page.url.endswith("/staff/sign-in?signed-out")
    _clean(page, "sign-in")
    page.context.close()


def test_enrol_sign_out_and_sign_in_again(browser: Any, site: Site) -> None:
    """The invite registers a passkey in the authenticator; sign-out ends the session; the
    passkey signs in again."""
    page = _page(browser)
    _enrol(page, site, "anna@pulkstenu-outlets.lv", "Anna Liepa")
    assert "Anna Liepa" in page.locator(".console-who").inner_text()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["__Host-staff"]["httpOnly"] and cookies["__Host-staff"]["secure"]
    assert cookies["__Host-staff"]["sameSite"] == "Strict"
    page.locator(".console-signout button").click()
    page.wait_for_url("**/staff/sign-in?signed-out")
    page.goto(f"{site.base}/staff/")
    assert page.url == f"{site.base}/staff/sign-in"
    _sign_in(page, site)
    assert "Anna Liepa" in page.locator(".console-who").inner_text()
    page.context.close()


def test_a_second_member_signs_in_with_their_own_passkey(browser: Any, site: Site) -> None:
    """Two members, two devices: each passkey signs in its own member, and no other."""
    first, second = _page(browser), _page(browser)
    _enrol(first, site, "liga@pulkstenu-outlets.lv", "Līga Kalniņa")
    _enrol(second, site, "karlis@pulkstenu-outlets.lv", "Kārlis Ozols")
    for page, name in ((first, "Līga Kalniņa"), (second, "Kārlis Ozols")):
        page.context.clear_cookies()
        _sign_in(page, site)
        assert page.locator(".console-who").inner_text() == name
    first.context.close()
    second.context.close()


def test_an_expired_invite_registers_nothing(browser: Any, site: Site) -> None:
    """A link older than 24 hours shows a page saying so, without the button."""
    _, token = site.members.invite("late@pulkstenu-outlets.lv", "Late Comer", "en",
                                   dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
    page = _page(browser)
    response = page.goto(f"{site.base}/staff/enrol/{token}")
    assert response is not None and response.status == 410
    assert page.locator("[data-start]").count() == 0
    _clean(page, "expired invitation")
    page.context.close()


def test_a_removed_members_session_ends(browser: Any, site: Site) -> None:
    """Removing a member signs them out at once; their passkey then signs in nobody."""
    page = _page(browser)
    _enrol(page, site, "gone@pulkstenu-outlets.lv", "Gone Soon")
    site.members.remove("gone@pulkstenu-outlets.lv")
    page.goto(f"{site.base}/staff/requests")
    assert page.url == f"{site.base}/staff/sign-in"
    page.click("[data-start]")
    page.wait_for_selector("[data-message]:not(:empty)")
    assert page.url == f"{site.base}/staff/sign-in"
    assert page.locator("[data-message]").inner_text().strip() != ""
    page.context.close()


def test_every_console_url_needs_a_session(browser: Any, site: Site) -> None:
    """Without a session, every console page leads to the sign-in page and shows no data."""
    record = site.request(1, name="Slepena Persona")
    page = _page(browser)
    for path in ("/staff/", "/staff/requests", f"/staff/requests/{record.reference}",
                 "/staff/export", "/staff/requests?q=Slepena"):
        page.goto(site.base + path)
        assert page.url == f"{site.base}/staff/sign-in", path
        assert "Slepena" not in page.content()
    page.context.close()


def test_the_export_downloads_after_the_passkey(browser: Any, site: Site, tmp_path: Path) -> None:
    """The export button asks the passkey again, then downloads the register as a file."""
    record = site.request(1)
    page = _page(browser)
    _enrol(page, site, "export@pulkstenu-outlets.lv", "Export Er")
    page.goto(f"{site.base}/staff/export")
    page.check("#format-json")
    with page.expect_download() as info:
        page.click("[data-start]")
    download = info.value
    assert download.suggested_filename.startswith("register-")
    assert download.suggested_filename.endswith(".json")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    assert record.reference in target.read_text(encoding="utf-8")
    page.context.close()


def _focus_visible(page: Any) -> bool:
    return bool(page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
            || s.boxShadow !== 'none';
    }"""))


def _tab_until(page: Any, test: str, limit: int = 80) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"(() => {{ const el = document.activeElement; return {test}; }})()"):
            assert _focus_visible(page), f"no visible focus on {test}"
            return
    raise AssertionError(f"Tab never reached {test}")


def test_keyboard_only_sign_in_find_and_note(browser: Any, site: Site) -> None:
    """With the keyboard alone: sign in, open the requests, open one, add a note."""
    record = site.request(5, name="Klaviatūra Test")
    page = _page(browser)
    _enrol(page, site, "keys@pulkstenu-outlets.lv", "Key Board")
    page.context.clear_cookies()
    page.goto(f"{site.base}/staff/sign-in")
    _tab_until(page, "el.hasAttribute('data-start')")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{site.base}/staff/"
    _tab_until(page, "el.getAttribute('href') === '/staff/requests'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_until(page, f"el.getAttribute('href') === '/staff/requests/{record.reference}'")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    _tab_until(page, "el.id === 'note-text'", limit=120)
    page.keyboard.type("Piezvanīju, viss skaidrs.")
    _tab_until(page, "el.type === 'submit' && el.closest('#note') !== null")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "done=noted" in page.url
    events = site.store.events(record.reference)
    assert events[-2].kind == "note" and events[-2].detail is not None
    assert events[-2].detail["text"] == "Piezvanīju, viss skaidrs."
    page.context.close()
