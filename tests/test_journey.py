"""The whole journey in Debian's Chromium: policy page → form → e-mail → verified → ticket."""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import chromium
from live_service import REFERENCE, LiveService
from site_tree import LANGUAGES, ROOT
from smtp_server import Received, SmtpServer, body_of

from site_config.build_site import build_site
from site_config.facts import load_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]

STAFF = "staff@pulkstenu-outlets.lv"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[LiveService]:
    """`policy-site serve` with a freshly built site, SQLite and the real SMTP server."""
    work = tmp_path_factory.mktemp("journey")
    site_dir = build_site(ROOT, work / "site")
    live = LiveService(work / "var", site_dir, smtp.url)
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def wait_for_mail(smtp: SmtpServer, predicate, seconds: float = 20) -> Received:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with smtp.lock:
            found = [m for m in smtp.messages if predicate(m)]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError("the expected e-mail did not arrive")


@pytest.mark.parametrize(
    ("start", "right_label", "lang", "policy_file", "confirmed_words"),
    [
        ("/en/", "Erase your data", "en", "content/en/index.md", "confirmed"),
        ("/", "Datu dzēšana", "lv", "content/lv/index.md", "apstiprināt"),
        ("/ru/", "Удаление ваших данных", "ru", "content/ru/index.md", "подтвержд"),
    ],
)
def test_erasure_request_from_policy_page_to_staff_ticket(  # type: ignore[no-untyped-def]
    browser, service: LiveService, smtp: SmtpServer, start: str, right_label: str, lang: str,
    policy_file: str, confirmed_words: str,
) -> None:
    """A reader follows "use your rights" in their language, confirms the e-mail written in
    it, and staff get the exact version in the staff language."""
    email = f"janis.{lang}.{time.monotonic_ns()}@example.lv"
    page = browser.new_page()
    page.goto(service.base_url + start)
    page.locator(".use-your-rights").get_by_role("link", name=right_label).click()
    assert re.search(r"/request/\?type=erasure&v=1\.0$", page.url)
    assert page.locator('input[name="request_type"][value="erasure"]').is_checked()

    page.fill("#name", "Jānis Bērziņš")
    page.fill("#email", email)
    page.fill("#details", "Lūdzu, izdzēsiet manu kontu. Please delete my account.")
    with page.expect_navigation():
        page.locator('button[type="submit"]').click()
    match = REFERENCE.search(page.content())
    assert match, page.content()
    reference = match[0]

    verify_mail = wait_for_mail(smtp, lambda m: email in m.recipients)
    link = re.search(rf"{re.escape(service.base_url)}/request/verify/\S+", body_of(verify_mail))
    assert link, body_of(verify_mail)
    assert reference in body_of(verify_mail)
    # The customer's e-mail is in the language they wrote in; staff's in the staff language.
    assert verify_mail.message["Content-Language"] == lang
    page.goto(link[0])
    # Opening the link only shows the page; the button confirms (a scanner never presses it).
    assert reference in page.locator("main").inner_text()
    with page.expect_navigation():
        page.locator('button[value="confirm"]').click()
    assert confirmed_words in page.locator("main").inner_text().lower()

    ticket = wait_for_mail(smtp, lambda m: STAFF in m.recipients and reference in str(
        m.message["Subject"]))
    text = body_of(ticket)
    assert ticket.message["Content-Language"] == load_site(ROOT).staff_language
    sha = hashlib.sha256((ROOT / policy_file).read_bytes()).hexdigest()
    assert sha in text
    assert "1.0" in text
    assert "versions/1.0/" in text
    assert ticket.message["Reply-To"].addresses[0].addr_spec == email
    page.close()


def test_errors_show_a_summary_that_takes_focus(browser, service: LiveService) -> None:  # type: ignore[no-untyped-def]
    """An empty submission shows the error summary, focused, linking to each field."""
    page = browser.new_page()
    page.goto(service.base_url + "/en/request/?type=access")
    with page.expect_navigation():
        page.locator('button[type="submit"]').click()
    summary = page.locator(".form-error-summary")
    assert summary.is_visible()
    assert page.title().startswith("Error")
    assert page.evaluate("document.activeElement.classList.contains('form-error-summary')")
    hrefs = summary.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert "#name" in hrefs and "#email" in hrefs
    page.close()


def test_policy_file_paths_exist() -> None:
    """The files whose fingerprints the journey compares are the committed texts."""
    for lang in LANGUAGES:
        assert (ROOT / "content" / lang / "index.md").is_file()
        assert Path(ROOT / "content" / lang / "index.md").read_bytes().startswith(b"---\n")
