"""What a reader sees in Debian's Chromium: nothing scrolls sideways, nothing fails to load,
the service's pages have the site's layout, the header title fits a phone, each
version prints on A4 headed by its id, date and SHA-256, and pages weigh little."""

from __future__ import annotations

import io
import json
import re
import unicodedata
from collections.abc import Iterator
from typing import Any

import pytest
from browser import chromium
from page_kinds import KINDS, PREFIXES, SUBMIT, Served, every_page_kind

pytestmark = [pytest.mark.browser, pytest.mark.slow]
WIDTHS = (320, 390, 768, 1280)


@pytest.fixture(scope="module")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with every_page_kind(tmp_path_factory.mktemp("layout")) as served_site:
        yield served_site


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _open(page: Any, served_site: Served, kind: str, lang: str) -> None:
    page.goto(served_site.url(kind, lang))
    if kind == "form with errors":
        with page.expect_navigation():
            page.click(SUBMIT)


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_scrolls_sideways(browser: Any, served_site: Served, width: int) -> None:
    """At 320, 390, 768 and 1280 px no page of any kind, in either language, is wider
    than the window (the hidden language menu stuck out; the history overflowed)."""
    page = browser.new_page(viewport={"width": width, "height": 800})
    wider = {}
    for lang in PREFIXES:
        for kind in KINDS:
            _open(page, served_site, kind, lang)
            scroll = page.evaluate("document.documentElement.scrollWidth")
            if scroll > width:
                wider[kind, lang] = scroll
    page.close()
    assert wider == {}


def test_the_header_title_fits_a_small_phone(browser: Any, served_site: Served) -> None:
    """At 320 px the site's name in the header is shown whole, not cut mid-word."""
    page = browser.new_page(viewport={"width": 320, "height": 640})
    for lang in PREFIXES:
        page.goto(served_site.url("policy", lang))
        title = page.locator(".md-header__topic").first.locator(".md-ellipsis")
        assert title.inner_text().strip() == "Pulksteņu Outlets"
        assert title.evaluate("e => e.scrollWidth <= e.clientWidth")
    page.close()


@pytest.mark.parametrize("lang", PREFIXES)
def test_pages_load_without_errors_or_failed_requests(browser: Any, served_site: Served,
                                                      lang: str) -> None:
    """No page logs a console error or an uncaught script error, or asks for anything that
    is not there (Material asked for sitemap.xml under /en/ and /versions/1.0/)."""
    problems: list[str] = []
    current = {"kind": ""}
    # The 404 page is answered with its status on purpose; Chromium logs that status of
    # the document itself as an error.
    own_status = {"404": 404}

    def console(message: Any) -> None:
        expected = own_status.get(current["kind"])
        if message.type != "error" or (
                expected and f"status of {expected}" in message.text):
            return
        problems.append(f"{current['kind']}: console: {message.text}")

    page = browser.new_page()
    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"{current['kind']}: script: {error}"))
    page.on("response", lambda r: r.status >= 400 and r.request.resource_type != "document"
            and problems.append(f"{current['kind']}: {r.status} {r.url}"))
    for kind in KINDS:
        current["kind"] = kind
        _open(page, served_site, kind, lang)
        page.wait_for_load_state("networkidle")
        # Material looks for the page's twin in the sitemap when the language is changed.
        if kind == "archived version":
            page.hover(".policy-language")
            page.wait_for_load_state("networkidle")
    page.close()
    assert problems == []


@pytest.mark.parametrize("lang", PREFIXES)
def test_service_pages_have_the_site_layout(browser: Any, served_site: Served,
                                            lang: str) -> None:
    """The form, its confirmation and the e-mail link's page have the policy pages' header,
    navigation sidebar and footer, and announce the feed."""
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(served_site.url("policy", lang))
    def nav() -> list[str]:
        texts = page.locator(".md-nav--primary > .md-nav__list > .md-nav__item > a.md-nav__link"
                             ).all_inner_texts()
        return [" ".join(t.split()) for t in texts]

    policy_nav = nav()
    assert len(policy_nav) == 2  # the policy and the versions
    policy_footer = page.locator(".policy-footer").inner_text()
    for kind in ("form", "form with errors", "confirmation", "verification", "404"):
        _open(page, served_site, kind, lang)
        assert page.locator(".md-header").count() == 1, kind
        assert nav() == policy_nav, kind
        assert page.locator(".policy-footer").inner_text() == policy_footer, kind
        feed = page.locator('link[rel="alternate"][type="application/atom+xml"]')
        assert feed.get_attribute("href") == f"{PREFIXES[lang]}feed.xml", kind
        assert re.fullmatch(r"\S.* — Pulksteņu Outlets", page.title()), kind
    page.close()


def _pdf_pages(browser: Any, url: str) -> list[str]:
    from pypdf import PdfReader

    page = browser.new_page()
    page.goto(url)
    pdf = page.pdf(format="A4")
    page.close()
    # NFKC: the PDF sets "ff" as a ligature; spaces and breaks vary with the layout.
    return ["".join(unicodedata.normalize("NFKC", p.extract_text() or "").split())
            for p in PdfReader(io.BytesIO(pdf)).pages]


@pytest.mark.parametrize(("kind", "lang", "version", "date"), [
    ("archived version", "en", "1.0", "24November2026"),
    ("policy", "lv", "1.1", "27.11.2026."),
    ("upcoming version", "lv", "1.2", "31.12.2026."),
])
def test_a_printed_version_names_itself_at_its_head(browser: Any, served_site: Served,
                                                    kind: str, lang: str, version: str,
                                                    date: str) -> None:
    """Printed on A4, a version's first page begins with its id, effective date and SHA-256
    (as in /versions.json), above its title, and no page has the header, menus or the
    "use your rights" box."""
    manifest = json.loads((served_site.site_dir / "versions.json").read_text("utf-8"))
    sha = next(v for v in manifest["versions"] if v["id"] == version)["texts"][lang]["sha256"]
    pages = _pdf_pages(browser, served_site.url(kind, lang))
    assert len(pages) >= 2
    word = "version" if lang == "en" else "versija"
    line = f"{word}{version}·" + ("effective" if lang == "en" else "spēkāno") + date
    head = pages[0].find(f"SHA-256:{sha}")
    assert 0 <= pages[0].find(line) < head
    title = "PrivacypolicyofthePulksteņuOutletswebsite" if lang == "en" else (
        "TīmekļavietnesPulksteņuOutletskonfidencialitātespolitika")
    assert head < pages[0].find(title)
    assert not any("Useyourrights" in t or "Izmantojietsavastiesības" in t for t in pages)
    assert not any("Personasdatupārzinis" in t or "Datacontroller" in t for t in pages)


@pytest.mark.parametrize(("kind", "limit_kb"), [("policy", 100), ("form", 60)])
def test_page_weight(browser: Any, served_site: Served, kind: str, limit_kb: int) -> None:
    """The home page transfers at most 100 KB and the form at most 60 KB (headers and
    compressed bodies of everything the page loads, Material's sitemap look-up included),
    in both languages, on a first visit."""
    for lang in PREFIXES:
        loaded = _first_visit(browser, served_site.url(kind, lang))
        total = sum(loaded.values())
        assert 0 < total <= limit_kb * 1024, (lang, total)
        if kind == "policy":
            assert any(url.endswith(".min.js") for url in loaded)  # the script counted


def _first_visit(browser: Any, url: str) -> dict[str, int]:
    """Bytes transferred (headers and body as sent) per address a page loads on a first
    visit (a fresh context: nothing cached)."""
    context = browser.new_context()
    page = context.new_page()
    requests: list[Any] = []
    page.on("requestfinished", lambda request: requests.append(request))
    page.goto(url, wait_until="networkidle")
    loaded = {}
    for request in requests:
        sizes = request.sizes()
        loaded[request.url] = sizes["responseBodySize"] + sizes["responseHeadersSize"]
    context.close()
    return loaded
