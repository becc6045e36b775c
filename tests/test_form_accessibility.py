"""Every kind of form-service page in both languages, in Debian's Chromium.

axe-core (WCAG 2.2 A/AA) on the empty form, the form with errors, the
confirmation, the verification results and the error pages (404, 413, 429,
500), and a keyboard-only journey from the form to its confirmation.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from browser import axe_violations, chromium
from site_tree import LANGUAGES, PREFIXES
from web_support import SECRET, make_settings, served

from form_service.records import NewRequest, RequestRecord
from form_service.store import Store
from form_service.tokens import make_token
from form_service.web.ratelimit import RateLimits

pytestmark = pytest.mark.browser
REFERENCE = re.compile(r"PO-[0-9A-Z]{4}-[0-9A-Z]{4}")


class _FailingStore(Store):
    """A store whose writes fail, to bring about the 500 page."""

    def create_request(self, new: NewRequest) -> tuple[RequestRecord, bool]:
        raise RuntimeError("disk on fire")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with served(make_settings(tmp_path_factory.mktemp("a11y-form"))) as url:
        yield url


def _assert_accessible(page: Any, what: str) -> None:
    assert axe_violations(page) == [], what


def _fill(page: Any, email: str) -> None:
    page.fill("#name", "Anna Liepa")
    page.fill("#email", email)
    page.fill("#details", "Lūdzu, atsūtiet manus datus.")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_form_pages_have_no_violations(browser: Any, base: str, lang: str) -> None:
    """Empty form, form with errors, confirmation and every verification result pass axe."""
    page = browser.new_page(viewport={"width": 412, "height": 900})
    prefix = PREFIXES[lang]
    page.goto(f"{base}{prefix}request/?type=access")
    _assert_accessible(page, "empty form")

    page.locator('button[type="submit"]').click()
    page.wait_for_selector(".form-error-summary")
    _assert_accessible(page, "form with errors")

    _fill(page, f"anna.{lang}@example.lv")
    with page.expect_navigation():
        page.locator('button[type="submit"]').click()
    reference = REFERENCE.search(page.content())
    assert reference, "no confirmation"
    _assert_accessible(page, "confirmation")

    link = f"{base}/request/verify/{make_token(SECRET, 'verify', {'ref': reference[0]})}"
    page.goto(link)
    _assert_accessible(page, "confirmation link's page")
    with page.expect_navigation():
        page.locator('button[value="confirm"]').click()
    _assert_accessible(page, "verified")
    page.goto(link)
    _assert_accessible(page, "already verified")
    page.goto(f"{base}/request/verify/not-a-real-token")
    _assert_accessible(page, "bad link")
    page.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_error_pages_have_no_violations(browser: Any, base: str, lang: str,
                                        tmp_path: Path) -> None:
    """The 404, 413, 429 and 500 pages, as the service sends them, pass axe."""
    page = browser.new_page()
    prefix = PREFIXES[lang]
    page.goto(f"{base}{prefix}no-such-page/")
    _assert_accessible(page, "404")

    # The browser cannot be made to send 100 KB by a customer's hand; send it with
    # an HTTP client and show the service's own 413 page to the browser.
    too_big = httpx2.post(f"{base}{prefix}request/", content=b"x" * 200_000,
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert too_big.status_code == 413
    url = f"{base}{prefix}request/too-big"
    page.route(url, lambda route: route.fulfill(status=413, body=too_big.text,
                                                content_type="text/html; charset=utf-8"))
    page.goto(url)
    _assert_accessible(page, "413")

    strict = make_settings(tmp_path / "strict")
    limits = RateLimits(per_ip="1/hour", key_prefix=f"a11y-{lang}")
    with served(strict, rate_limits=limits) as strict_base:
        for _ in range(2):
            page.goto(f"{strict_base}{prefix}request/?type=access")
            _fill(page, "same@example.lv")
            with page.expect_navigation():
                page.locator('button[type="submit"]').click()
        assert page.locator("h1").count() == 1
        _assert_accessible(page, "429")

    broken = make_settings(tmp_path / "broken")
    with served(broken, store=_FailingStore(broken.database_url)) as broken_base:
        page.goto(f"{broken_base}{prefix}request/?type=access")
        _fill(page, "anna@example.lv")
        with page.expect_navigation():
            page.locator('button[type="submit"]').click()
        assert "Traceback" not in page.content() and "disk on fire" not in page.content()
        _assert_accessible(page, "500")
    page.close()


def _focus_is_visible(page: Any) -> bool:
    return bool(page.evaluate("""() => {
        const s = getComputedStyle(document.activeElement);
        return (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0)
            || s.boxShadow !== 'none';
    }"""))


def _tab_to(page: Any, element_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == element_id:
            assert _focus_is_visible(page), f"no visible focus on #{element_id}"
            return
    raise AssertionError(f"Tab never reached #{element_id}")


def test_keyboard_only_journey_reaches_the_confirmation(browser: Any, base: str) -> None:
    """With Tab, Shift+Tab, arrows, Space and Enter only, a customer gets a reference."""
    page = browser.new_page()
    page.goto(f"{base}/en/request/")
    _tab_to(page, "name")
    page.keyboard.type("Kārlis Ozols")
    _tab_to(page, "email")
    page.keyboard.type("karlis@example.lv")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.id") == "name"
    _tab_to(page, "email")
    page.keyboard.press("Tab")  # into the radio group: the first right
    assert page.evaluate("document.activeElement.name") == "request_type"
    assert _focus_is_visible(page)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")
    chosen = page.evaluate("document.querySelector('input[name=request_type]:checked').value")
    assert chosen == "rectification"
    _tab_to(page, "details")
    page.keyboard.type("My address changed.")
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.type") == "submit":
            break
    assert page.evaluate("document.activeElement.type") == "submit"
    assert _focus_is_visible(page)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_selector("text=PO-")
    assert REFERENCE.search(page.content())
    page.close()
