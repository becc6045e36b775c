"""Every kind of policy page in both languages, in Debian's Chromium: axe, print, privacy."""

from __future__ import annotations

import datetime as dt
import io
import unicodedata
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import CHROMIUM, axe_violations, chromium, static_server
from site_tree import PREFIXES, copy_project, per_language, release

from site_config.build_site import build_site

pytestmark = pytest.mark.browser

PAGES = [
    *(f"{prefix}{path}" for prefix in PREFIXES.values() for path in (
        "",                     # current policy
        "versions/",            # history
        "versions/1.0/",        # current version's archive page
        "versions/1.1/",        # upcoming version
        "versions/1.1/changes/",  # comparison
    )),
    "/404.html",                # error page
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A two-version site (1.1 upcoming) built on 2026-11-27, served on loopback."""
    root = copy_project(tmp_path_factory.mktemp("a11y"))
    release(root, "1.1", dt.date(2026, 12, 31), per_language({
        "lv": ("Pasta serveriem.", "Kurjeriem.", "Pasta serveri aizstāti ar kurjeriem."),
        "en": ("Mail servers.", "Couriers.", "Mail servers replaced by couriers."),
        "ru": ("Почтовым серверам.", "Курьерам.", "Почтовые серверы заменены курьерами."),
    }), sealed_on=dt.date(2026, 11, 27))
    out = build_site(root, root / "site", dt.date(2026, 11, 27))
    with static_server(out) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


@pytest.mark.parametrize("path", PAGES)
def test_no_wcag_violations(browser, base_url: str, path: str) -> None:  # type: ignore[no-untyped-def]
    """axe-core finds no WCAG 2.2 A/AA violation on the page."""
    page = browser.new_page()
    page.goto(base_url + path)
    assert axe_violations(page) == []
    page.close()


@pytest.mark.parametrize("path", ["/en/", "/versions/1.1/changes/"])
def test_no_request_leaves_the_site_and_no_cookie_is_set(browser, base_url: str,  # type: ignore[no-untyped-def]
                                                         path: str) -> None:
    """Loading a page asks nothing of any other host and sets no cookie."""
    context = browser.new_context()
    page = context.new_page()
    hosts: set[str] = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.goto(base_url + path, wait_until="networkidle")
    assert hosts == {base_url.split("/")[2]}
    assert context.cookies() == []
    context.close()


def _pdf_text(browser, url: str) -> str:  # type: ignore[no-untyped-def]
    from pypdf import PdfReader

    page = browser.new_page()
    page.goto(url)
    pdf = page.pdf(format="A4")
    page.close()
    text = " ".join((p.extract_text() or "") for p in PdfReader(io.BytesIO(pdf)).pages)
    return unicodedata.normalize("NFKC", text)  # the PDF sets "ff" as a ligature


def test_printed_policy_has_its_version_and_date(browser, base_url: str) -> None:  # type: ignore[no-untyped-def]
    """On paper the policy keeps its title, version line and text."""
    text = " ".join(_pdf_text(browser, base_url + "/en/").split())
    assert "Version 1.0, effective 24 November 2026" in text
    assert "Privacy policy of the Pulksteņu Outlets website" in text
    assert "info@pulkstenu-outlets.lv" in text


def test_printed_comparison_shows_removed_and_added_words(browser, base_url: str) -> None:  # type: ignore[no-untyped-def]
    """On paper removed and added words keep their [−…−] and [+…+] marks."""
    text = " ".join(_pdf_text(browser, base_url + "/en/versions/1.1/changes/").split())
    assert "[−Mail servers.−]" in text
    assert "[+Couriers.+]" in text
    assert "Version 1.1, effective 31 December 2026" in text


def test_chromium_is_the_systems(browser) -> None:  # type: ignore[no-untyped-def]
    """The browser under test is the system's (POLICY_CHROMIUM), not a test tool's download."""
    assert Path(CHROMIUM).is_file()
    assert "ms-playwright" not in str(Path(CHROMIUM).resolve())
    assert browser.version
