"""The built site: pages, languages, versions, comparison, manifest and privacy."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from pathlib import Path

import pytest
from site_tree import LANGUAGES, PREFIXES, copy_project, edit, per_language, release, site_of

from site_config.build_site import BuildError, build_site


@pytest.fixture(scope="module")
def two_version_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project with 1.0 in force and 1.1 taking effect on 2026-12-31, built on 2026-11-27."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    release(root, "1.1", dt.date(2026, 12, 31), per_language({
        "lv": ("Pasta serveriem.", "Pasta serveriem un kurjeriem.", "Pievienoti kurjeri."),
        "en": ("Mail servers.", "Mail servers and couriers.", "Couriers added."),
        "ru": ("Почтовым серверам.", "Почтовым серверам и курьерам.", "Добавлены курьеры."),
    }), sealed_on=dt.date(2026, 11, 27))
    build_site(root, root / "site", dt.date(2026, 11, 27))
    return root


def page(root: Path, path: str) -> str:
    return (root / "site" / path).read_text(encoding="utf-8")


def test_built_pages_are_exactly_these(two_version_site: Path) -> None:
    """Each language has the policy, the history, every version, one comparison, its own
    404 page and the layout of the service's pages (request/)."""
    pages = sorted(
        p.relative_to(two_version_site / "site").as_posix()
        for p in (two_version_site / "site").rglob("*.html")
    )
    per_language_pages = [
        "404.html",
        "index.html",
        "request/index.html",
        "versions/1.0/index.html",
        "versions/1.1/changes/index.html",
        "versions/1.1/index.html",
        "versions/index.html",
    ]
    expected = sorted(PREFIXES[lang].lstrip("/") + p for lang in LANGUAGES
                      for p in per_language_pages)
    assert pages == expected
    assert "ru/versions/1.1/changes/index.html" in expected


@pytest.mark.parametrize(
    ("path", "lang"),
    [("index.html", "lv"), ("en/index.html", "en"), ("versions/1.0/index.html", "lv"),
     ("en/versions/1.1/changes/index.html", "en"), ("en/versions/index.html", "en"),
     ("ru/index.html", "ru"), ("ru/versions/1.1/changes/index.html", "ru")],
)
def test_html_lang_and_hreflang(two_version_site: Path, path: str, lang: str) -> None:
    """Every page declares its language and its language menu links each twin with hreflang
    and lang."""
    html = page(two_version_site, path)
    assert f'<html lang="{lang}"' in html
    alternates = dict(
        (m[1], m[0]) for m in re.findall(r'<a href="([^"]*)" hreflang="(\w+)" lang="\2"', html)
    )
    assert set(alternates) == set(LANGUAGES)


def test_language_switcher_links_the_twin_page(two_version_site: Path) -> None:
    """On an archived English page the switcher leads to the same Latvian version."""
    html = page(two_version_site, "en/versions/1.0/index.html")
    assert 'href="/versions/1.0/" hreflang="lv" lang="lv"' in html


def test_language_switcher_has_an_entry_per_language(two_version_site: Path) -> None:
    """The switcher on a Russian page offers every configured language, Russian included,
    each linking its twin page."""
    html = page(two_version_site, "ru/versions/1.0/index.html")
    entries = re.findall(r'<a href="([^"]*)" hreflang="(\w+)" lang="\w+" class="md-select__link"',
                         html)
    assert [lang for _, lang in entries] == list(LANGUAGES)
    assert ("/en/versions/1.0/", "en") in entries


def test_a_translation_says_the_latvian_text_binds(two_version_site: Path) -> None:
    """Each Russian and English policy page says it is a translation and links the binding
    text; the Latvian page does not."""
    ru = page(two_version_site, "ru/versions/1.0/index.html")
    assert ('<p class="policy-translation">Это перевод. Юридически обязательным является '
            'текст на латышском языке. <a href="/versions/1.0/" hreflang="lv">') in ru
    assert 'class="policy-translation"' in page(two_version_site, "en/index.html")
    assert 'class="policy-translation"' not in page(two_version_site, "index.html")


def test_root_shows_the_version_in_force_with_its_date(two_version_site: Path) -> None:
    """On 2026-11-27 the root shows 1.0 (1.1 is upcoming) and its effective date."""
    lv = page(two_version_site, "index.html")
    en = page(two_version_site, "en/index.html")
    assert '<p class="policy-version">Versija 1.0, spēkā no 24.11.2026.</p>' in lv
    assert '<p class="policy-version">Version 1.0, effective 24 November 2026</p>' in en
    assert "kurjeriem" not in lv


def test_upcoming_change_is_announced(two_version_site: Path) -> None:
    """Current pages carry a banner linking to the comparison of the upcoming version."""
    en = page(two_version_site, "en/index.html")
    assert "This policy changes on 31 December 2026." in en
    assert 'href="/en/versions/1.1/changes/"' in en


def test_archived_version_says_it_is_not_current(two_version_site: Path) -> None:
    """An upcoming version's page says when it takes effect and links to the current text."""
    html = page(two_version_site, "en/versions/1.1/index.html")
    assert "This version takes effect on 31 December 2026" in html
    assert 'href="/en/">Read the version in force</a>' in html


def test_history_lists_every_version(two_version_site: Path) -> None:
    """The history names each version, its date, its summary and its comparison."""
    html = page(two_version_site, "en/versions/index.html")
    assert '<a href="1.1/">1.1</a> <span class="policy-history__status">(upcoming)</span>' in html
    assert '<a href="1.0/">1.0</a> <span class="policy-history__status">(in force)</span>' in html
    assert "Couriers added." in html and "First published version" in html
    assert '<a href="1.1/changes/">Compare with 1.0</a>' in html


def test_comparison_marks_words_without_relying_on_colour(two_version_site: Path) -> None:
    """Added words are in <ins> with a visible [+ +] mark and a spoken label."""
    html = page(two_version_site, "versions/1.1/changes/index.html")
    ins = re.search(r"<ins>(.*?)</ins>", html, re.S)
    assert ins is not None
    assert 'class="visually-hidden">pievienots: </span>' in ins[1]
    assert "[+" in ins[1] and "+]" in ins[1] and "kurjeriem." in ins[1]
    assert re.search(r"<del>.*?serveriem\..*?</del>", html, re.S)


def test_rights_call_to_action_carries_type_and_version(two_version_site: Path) -> None:
    """Each right links to the form with its type and the version read, in that language."""
    lv = page(two_version_site, "index.html")
    en = page(two_version_site, "en/versions/1.1/index.html")
    for right in ("access", "rectification", "withdraw_consent", "unsubscribe", "erasure"):
        assert f'href="/request/?type={right}&amp;v=1.0"' in lv
        assert f'href="/en/request/?type={right}&amp;v=1.1"' in en
    assert '<aside class="use-your-rights"' in lv


def test_versions_json_matches_the_files(two_version_site: Path) -> None:
    """The manifest has the DESIGN shape and each sha256 is that of the committed file."""
    manifest = json.loads(page(two_version_site, "versions.json"))
    assert manifest["current"] == "1.0" and manifest["upcoming"] == "1.1"
    assert [v["id"] for v in manifest["versions"]] == ["1.0", "1.1"]
    files = {"1.0": "content/{lang}/versions/1.0.md", "1.1": "content/{lang}/index.md"}
    for version in manifest["versions"]:
        assert set(version) == {"id", "effective", "texts", "summary"}
        assert list(version["texts"]) == list(LANGUAGES)
        for lang, text in version["texts"].items():
            path = two_version_site / files[version["id"]].format(lang=lang)
            assert text["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            assert text["url"] == f"{PREFIXES[lang]}versions/{version['id']}/"


def test_upcoming_version_becomes_current_on_its_day(two_version_site: Path,
                                                     tmp_path: Path) -> None:
    """Built on 2026-12-31, the root shows 1.1 and no banner."""
    out = build_site(two_version_site, tmp_path / "site", dt.date(2026, 12, 31))
    html = (out / "index.html").read_text("utf-8")
    assert "Versija 1.1, spēkā no 31.12.2026." in html and "kurjeriem" in html
    assert "policy-banner" not in html
    assert json.loads((out / "versions.json").read_text())["current"] == "1.1"
    archived = (out / "en" / "versions" / "1.0" / "index.html").read_text("utf-8")
    assert "This is archived version 1.0; it is no longer in force." in archived
    assert 'href="/en/">Read the version in force</a>' in archived


def test_builds_of_two_projects_in_one_process_do_not_mix(two_version_site: Path,
                                                          tmp_path: Path) -> None:
    """The plugin's hooks serve every build in a process: building another project (1.0
    only) in between leaves nothing of it in the next build's manifest."""
    other = tmp_path / "other"
    other.mkdir()
    copy_project(other)
    build_site(other, tmp_path / "other-site", dt.date(2026, 11, 27))
    out = build_site(two_version_site, tmp_path / "again", dt.date(2026, 11, 27))
    manifest = json.loads((out / "versions.json").read_text("utf-8"))
    assert [v["id"] for v in manifest["versions"]] == ["1.0", "1.1"]
    assert all(list(v["texts"]) == list(LANGUAGES) for v in manifest["versions"])


def test_no_request_to_any_other_host(two_version_site: Path) -> None:
    """No page or stylesheet loads anything from another host, and there is no search index."""
    site = two_version_site / "site"
    for html_file in site.rglob("*.html"):
        html = html_file.read_text("utf-8")
        for attr in re.findall(r'(?:src|href)="([^"]+)"', html):
            if attr.startswith(("http:", "https:", "//")):
                # Links a reader or a search engine may follow (canonical, alternates)
                # are fine; nothing may be loaded from elsewhere.
                loaded = r'(?:src|<link rel="(?:stylesheet|icon|preload|modulepreload)"[^>]*href)'
                assert not re.search(rf'{loaded}="{re.escape(attr)}"', html), attr
        assert "fonts.googleapis" not in html and "fonts.gstatic" not in html
    for css in site.rglob("*.css"):
        assert not re.search(r"url\((['\"]?)(https?:)?//", css.read_text("utf-8")), css
    assert not (site / "search").exists()


def test_form_address_is_a_site_setting(tmp_path: Path) -> None:
    """With form_base_url set, the rights links point at the service's host."""
    root = copy_project(tmp_path)
    edit(root / "site_config" / "site.yml", "form_base_url: /", "form_base_url: https://forms.example/")
    site_of(root)
    out = build_site(root, root / "site", dt.date(2026, 11, 27))
    assert 'href="https://forms.example/en/request/?type=erasure&amp;v=1.0"' in (
        out / "en" / "index.html"
    ).read_text("utf-8")


def test_a_broken_link_fails_the_strict_build(tmp_path: Path) -> None:
    """A warning (a link to a missing page) makes the build fail, as `--strict` does."""
    root = copy_project(tmp_path)
    index = root / "content" / "en" / "versions" / "index.md"
    index.write_text(index.read_text("utf-8") + "\n[gone](missing.md)\n", encoding="utf-8")
    site_of(root)
    with pytest.raises(BuildError):
        build_site(root, root / "site", dt.date(2026, 11, 27))


ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_atom_feed_lists_every_version(two_version_site: Path, lang: str) -> None:
    """Each language's feed (/feed.xml, /en/feed.xml, ...) parses as Atom with what RFC 4287
    requires, its links absolute under the site's public address."""
    from xml.etree import ElementTree as ET

    path = PREFIXES[lang].lstrip("/") + "feed.xml"
    feed = ET.fromstring((two_version_site / "site" / path).read_bytes())  # noqa: S314 -- our own build output
    assert feed.tag == f"{ATOM}feed"
    for required in ("id", "title", "updated", "author"):
        assert feed.find(f"{ATOM}{required}") is not None, required
    entries = feed.findall(f"{ATOM}entry")
    assert [e.find(f"{ATOM}id").text.rsplit("/", 1)[-1] for e in entries] == ["1.1", "1.0"]
    newest = entries[0]
    for required in ("id", "title", "updated", "summary"):
        assert newest.find(f"{ATOM}{required}").text, required
    links = {link.get("rel"): link.get("href") for link in newest.findall(f"{ATOM}link")}
    prefix = "https://privatums.pulkstenu-outlets.lv" + PREFIXES[lang]
    assert links == {"alternate": f"{prefix}versions/1.1/",
                     "related": f"{prefix}versions/1.1/changes/"}
    own = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert own == {"self": f"{prefix}feed.xml", "alternate": prefix}
    dt.datetime.fromisoformat(newest.find(f"{ATOM}updated").text.replace("Z", "+00:00"))


def test_every_page_announces_the_feed(two_version_site: Path) -> None:
    """Each page links its language's feed with rel=alternate type=application/atom+xml."""
    for html_file in (two_version_site / "site").rglob("index.html"):
        html = html_file.read_text("utf-8")
        lang = re.search(r'<html lang="(\w+)"', html)[1]  # type: ignore[index]
        feed = f"{PREFIXES[lang]}feed.xml"
        assert re.search(
            rf'<link rel="alternate" type="application/atom\+xml" title="[^"]+" href="{feed}">',
            html,
        ), html_file


SITE_URL = "https://privatums.pulkstenu-outlets.lv/"


def test_sitemap_lists_every_page_at_its_public_address(two_version_site: Path) -> None:
    """sitemap.xml names every page of both languages under site_url (never "None"), each
    with its twins and x-default; the gzip copy holds the same."""
    import gzip
    from xml.etree import ElementTree as ET

    raw = (two_version_site / "site" / "sitemap.xml").read_bytes()
    assert b"None" not in raw
    assert gzip.decompress((two_version_site / "site" / "sitemap.xml.gz").read_bytes()) == raw
    ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9", "x": "http://www.w3.org/1999/xhtml"}
    urls = ET.fromstring(raw).findall("s:url", ns)  # noqa: S314 -- our own build output
    locs = [u.find("s:loc", ns).text for u in urls]
    for prefix in (p.lstrip("/") for p in PREFIXES.values()):
        for path in ("", "versions/", "versions/1.0/", "versions/1.1/", "versions/1.1/changes/",
                     "request/"):
            assert SITE_URL + prefix + path in locs, prefix + path
    assert len(locs) == len(set(locs)) == 6 * len(LANGUAGES)
    first = {link.get("hreflang"): link.get("href") for link in urls[0].findall("x:link", ns)}
    assert first == {**{lang: SITE_URL + PREFIXES[lang].lstrip("/") for lang in LANGUAGES},
                     "x-default": SITE_URL}


@pytest.mark.parametrize(("path", "own"), [
    ("en/versions/1.0/index.html", "en/versions/1.0/"),
    ("versions/1.1/changes/index.html", "versions/1.1/changes/"),
])
def test_canonical_is_absolute_and_twins_are_in_the_sitemap(two_version_site: Path, path: str,
                                                            own: str) -> None:
    """Each page names its canonical address absolutely; its twins are in the sitemaps
    (a <link rel="alternate"> per twin made Material's script fetch sitemap.xml beside it,
    where there is none), and the English root has a sitemap of the English pages."""
    html = page(two_version_site, path)
    assert f'<link rel="canonical" href="{SITE_URL}{own}">' in html
    assert "hreflang=" not in re.search(r"<head>.*</head>", html, re.S)[0]
    english = page(two_version_site, "en/sitemap.xml")
    assert english.count("<loc>") == 6 and f"<loc>{SITE_URL}en/versions/1.0/</loc>" in english
    assert f'hreflang="lv" href="{SITE_URL}versions/1.0/"' in english


def test_every_page_has_its_own_title_and_description(two_version_site: Path) -> None:
    """Titles follow "Page — Pulksteņu Outlets" and no two pages share a title or a
    description (the layout of the service's pages aside: the service fills it)."""
    titles, descriptions = {}, {}
    for html_file in (two_version_site / "site").rglob("*.html"):
        if html_file.parent.name == "request":
            continue
        html = html_file.read_text("utf-8")
        title = re.search(r"<title>(.*?)</title>", html, re.S)[1]
        description = re.search(r'<meta name="description" content="([^"]+)">', html)[1]
        assert re.fullmatch(r"\S.* — Pulksteņu Outlets", title), (html_file, title)
        titles[html_file] = title
        descriptions[html_file] = description
    assert len(set(titles.values())) == len(titles) == 6 * len(LANGUAGES)
    assert len(set(descriptions.values())) == len(descriptions)
    assert titles[two_version_site / "site" / "en" / "index.html"] == (
        "Privacy policy — Pulksteņu Outlets")


@pytest.mark.parametrize(("path", "lang", "other"), [("404.html", "lv", "/en/"),
                                                     ("en/404.html", "en", "/"),
                                                     ("ru/404.html", "ru", "/")])
def test_a_404_page_per_language(two_version_site: Path, path: str, lang: str,
                                 other: str) -> None:
    """Each language has its own 404 page; its links work from any address (they start at
    the root) and the language menu leads to the other language's home."""
    html = page(two_version_site, path)
    assert f'<html lang="{lang}"' in html
    assert {"en": "Page not found", "lv": "Lapa nav atrasta",
            "ru": "Страница не найдена"}[lang] in html
    assert f'href="{other}" hreflang=' in html
    assert not re.search(r'(?:href|src)="(?!/|https?:|mailto:|#)', html)
    assert '<link rel="canonical"' not in html


def test_no_banner_strip_when_nothing_is_upcoming(two_version_site: Path,
                                                  tmp_path: Path) -> None:
    """With no upcoming version the page has no banner element at all (it drew an empty
    dark strip); with one, the banner is there."""
    assert '<aside class="md-banner">' in page(two_version_site, "index.html")
    out = build_site(two_version_site, tmp_path / "site", dt.date(2026, 12, 31))
    for html_file in out.rglob("*.html"):
        assert "md-banner" not in html_file.read_text("utf-8"), html_file


@pytest.mark.parametrize(("path", "lang"), [("versions/index.html", "lv"),
                                            ("en/versions/1.1/changes/index.html", "en")])
def test_footer_and_language_menu_speak_the_page_language(two_version_site: Path, path: str,
                                                          lang: str) -> None:
    """The footer names the controller, its e-mail, the versions and the feed in the page's
    language (not "Made with Material"), and the language button shows LV/EN in text."""
    html = page(two_version_site, path)
    footer = re.search(r'<div class="md-copyright policy-footer">(.*?)</div>', html, re.S)[1]
    assert "Made with" not in html
    assert ("Data controller: Pulksteņu Outlets" if lang == "en"
            else "Personas datu pārzinis: Pulksteņu Outlets") in footer
    assert 'href="mailto:info@pulkstenu-outlets.lv"' in footer
    prefix = "/" if lang == "lv" else "/en/"
    assert f'href="{prefix}versions/"' in footer and f'href="{prefix}feed.xml"' in footer
    button = re.search(r'<button class="md-header__button policy-language__button"[^>]*>(.*?)'
                       r"</button>", html, re.S)[1]
    assert button.strip().startswith(lang.upper())
    for code in LANGUAGES:
        assert re.search(rf'<a href="[^"]+" hreflang="{code}" lang="{code}" '
                         r'class="md-select__link"', html)


def test_history_cells_are_labelled_for_phones(two_version_site: Path) -> None:
    """Each cell of the history names its column, so that on a phone every version reads as
    a labelled block."""
    html = page(two_version_site, "en/versions/index.html")
    assert html.count('data-label="Effective"') == 2  # a row per version
    assert html.count('data-label="What changed"') == 2
    assert '<td data-label="Comparison"><a href="1.1/changes/">Compare with 1.0</a></td>' in html
