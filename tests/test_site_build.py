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
    """Each language has the policy, the history, every version and one comparison."""
    pages = sorted(
        p.relative_to(two_version_site / "site").as_posix()
        for p in (two_version_site / "site").rglob("*.html")
    )
    per_language_pages = [
        "index.html",
        "versions/1.0/index.html",
        "versions/1.1/changes/index.html",
        "versions/1.1/index.html",
        "versions/index.html",
    ]
    expected = sorted(["404.html"] + [PREFIXES[lang].lstrip("/") + p for lang in LANGUAGES
                                      for p in per_language_pages])
    assert pages == expected
    assert "ru/versions/1.1/changes/index.html" in expected


@pytest.mark.parametrize(
    ("path", "lang"),
    [("index.html", "lv"), ("en/index.html", "en"), ("versions/1.0/index.html", "lv"),
     ("en/versions/1.1/changes/index.html", "en"), ("en/versions/index.html", "en"),
     ("ru/index.html", "ru"), ("ru/versions/1.1/changes/index.html", "ru")],
)
def test_html_lang_and_hreflang(two_version_site: Path, path: str, lang: str) -> None:
    """Every page declares its language and links its twin with hreflang."""
    html = page(two_version_site, path)
    assert f'<html lang="{lang}"' in html
    alternates = dict(
        (m[1], m[0]) for m in re.findall(r'<link rel="alternate" href="([^"]*)" hreflang="(\w+)"',
                                          html)
    )
    assert set(alternates) == set(LANGUAGES)


def test_language_switcher_links_the_twin_page(two_version_site: Path) -> None:
    """On an archived English page the switcher leads to the same Latvian version."""
    html = page(two_version_site, "en/versions/1.0/index.html")
    assert 'href="../../../versions/1.0/" hreflang="lv"' in html


def test_language_switcher_has_an_entry_per_language(two_version_site: Path) -> None:
    """The switcher on a Russian page offers every configured language, Russian included,
    each linking its twin page."""
    html = page(two_version_site, "ru/versions/1.0/index.html")
    entries = re.findall(r'<a href="([^"]*)" hreflang="(\w+)" class="md-select__link"', html)
    assert [lang for _, lang in entries] == list(LANGUAGES)
    assert ("../../../en/versions/1.0/", "en") in entries


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
    assert '<a href="1.1/">1.1</a> (upcoming)' in html
    assert '<a href="1.0/">1.0</a> (in force)' in html
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
                # Links a reader may follow are fine; nothing may be loaded from elsewhere.
                assert not re.search(rf'(?:src|<link[^>]*href)="{re.escape(attr)}"', html), attr
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
    requires."""
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
    prefix = PREFIXES[lang]
    assert links == {"alternate": f"{prefix}versions/1.1/",
                     "related": f"{prefix}versions/1.1/changes/"}
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
