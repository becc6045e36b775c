"""MkDocs hooks: publish the policy's versions.

For the language being built (static-i18n builds one language at a time) this
adds the archived page of the newest version, a comparison page for every
version after the first, the history table, the version line under each
policy title, the "use your rights" call to action, and /versions.json.
"""

from __future__ import annotations

import gzip
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

from site_config import service_layout
from site_config.build_date import build_date
from site_config.diff import word_diff_html
from site_config.facts import Site, format_date, load_site, load_ui_texts
from site_config.feed import build_feed
from site_config.manifest import build_manifest, changes_url, version_url
from site_config.versions import (
    PolicyText,
    current_of,
    load_versions,
    previous_of,
    upcoming_of,
)

# Generated in every language besides the versions: the static 404 page (the web
# server in front answers a missing page with it) and the layout of the service's
# pages (form_service/web/assets.py reads it; the service answers its address itself).
NOT_FOUND = "404.md"
SERVICE_LAYOUT = "request.md"

_ARCHIVE = re.compile(r"^versions/(?P<id>\d+(?:\.\d+)+)\.md$")
_CHANGES = re.compile(r"^versions/(?P<id>\d+(?:\.\d+)+)/changes\.md$")


@dataclass
class _Build:
    """What one language's build knows about the versions."""

    site: Site
    lang: str
    ui: dict[str, Any]
    versions: list[PolicyText]
    current: PolicyText
    upcoming: PolicyText | None

    def version(self, version_id: str) -> PolicyText:
        return next(t for t in self.versions if t.id == version_id)

    def date(self, text: PolicyText) -> str:
        return format_date(self.ui, text.effective)


_state: dict[str, _Build] = {}


def _site(config: MkDocsConfig) -> Site:
    return load_site(Path(config.config_file_path).resolve().parent)


def _language(config: MkDocsConfig) -> str:
    return str(config.plugins["i18n"].current_language)


def _build(config: MkDocsConfig) -> _Build:
    return _state[_language(config)]


def _relative_uri(page: Page, lang: str) -> str:
    return page.file.src_uri.removeprefix(f"{lang}/")


def _dest(rel: str) -> str:
    """Where a generated page is written, under its language's folder."""
    if rel == NOT_FOUND:
        return "404.html"
    return rel.removesuffix(".md") + "/index.html"


def _generated(config: MkDocsConfig, site: Site, lang: str, rel: str, content: str) -> File:
    """A page made by this hook, placed where static-i18n places that language's pages."""
    prefix = "" if lang == site.default_language else f"{lang}/"
    page = File.generated(config, f"{lang}/{rel}", content=content)
    page.dest_uri = prefix + _dest(rel)
    # static-i18n's language switcher reads these to link each page to its twin.
    alternates = {}
    for other in site.language_codes:
        twin = File.generated(config, f"{other}/{rel}", content="")
        other_prefix = "" if other == site.default_language else f"{other}/"
        twin.dest_uri = other_prefix + _dest(rel)
        alternates[other] = twin
    alternates[lang] = page
    page.alternates = alternates  # type: ignore[attr-defined]
    page.locale = page.locale_alternate_of = page.localization = lang  # type: ignore[attr-defined]
    page.norm_src_uri = rel  # type: ignore[attr-defined]
    return page


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    # A preview rebuilds in the same process: read the editor's latest facts and
    # texts once per build (static-i18n's builds of the other languages set
    # `building` and reuse them).
    if not config.plugins["i18n"].building:
        load_site.cache_clear()
        load_ui_texts.cache_clear()
        # One process may build several projects (the plugin's module is shared by all):
        # nothing one build learnt may leak into the next.
        _state.clear()
    # Each language gets its own 404 page (on_files); Material's would be Latvian only.
    config.theme.static_templates.discard("404.html")
    # The public address (site.yml) makes the sitemap, canonical links and hreflang
    # alternates absolute, as search engines require (sitemaps.org: <loc> is a full URL).
    config.site_url = _site(config).site_url
    return config


@event_priority(-200)  # after static-i18n (-100) has chosen this language's files
def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    site = _site(config)
    lang = _language(config)
    versions = load_versions(site.content_dir, lang)
    today = build_date()
    state = _Build(
        site=site,
        lang=lang,
        ui=load_ui_texts(site.root, lang),
        versions=versions,
        current=current_of(versions, today),
        upcoming=upcoming_of(versions, today),
    )
    _state[lang] = state
    newest = versions[-1]
    files.append(
        _generated(config, site, lang, f"versions/{newest.id}.md", newest.path.read_text("utf-8"))
    )
    for text in versions[1:]:
        content = _changes_markdown(state, previous_of(versions, text), text)  # type: ignore[arg-type]
        files.append(_generated(config, site, lang, f"versions/{text.id}/changes.md", content))
    ui = state.ui
    not_found = (
        f"# {ui['not_found_title']}\n\n{ui['not_found_text']}\n\n"
        f'<ul>\n<li><a href="{site.prefix(lang)}">{html.escape(ui["not_found_home"])}</a></li>\n'
        f'<li><a href="{site.prefix(lang)}versions/">{html.escape(ui["history_link"])}</a></li>\n'
        "</ul>\n"
    )
    files.append(_generated(config, site, lang, NOT_FOUND, not_found))
    files.append(_generated(config, site, lang, SERVICE_LAYOUT, f"{service_layout.CONTENT}\n"))
    return files


def _changes_markdown(state: _Build, old: PolicyText, new: PolicyText) -> str:
    ui = state.ui
    diff, changes = word_diff_html(
        old.body, new.body, {"del": ui["changes_removed"], "ins": ui["changes_added"]}
    )
    title = ui["changes_title"].format(version=new.id, previous=old.id)
    legend = ui["changes_legend"] if changes else ui["changes_none"]
    read = ui["changes_read_version"].format(version=new.id)
    line = ui["version_line"].format(version=new.id, date=state.date(new))
    return (
        f"# {title}\n\n"
        f'<p class="policy-version">{html.escape(line)}</p>\n\n'
        f'<p class="diff-legend">{html.escape(legend)}</p>\n\n'
        f'<p><a href="../">{html.escape(read)}</a></p>\n\n'
        f"{diff}\n"
    )


def _history_table(state: _Build) -> str:
    ui = state.ui
    rows = []
    for text in reversed(state.versions):
        status = ""
        if text.id == state.current.id:
            status = ui["history_current"]
        elif state.upcoming and text.effective > state.current.effective:
            status = ui["history_upcoming"]
        if status:
            status = f' <span class="policy-history__status">{html.escape(status)}</span>'
        labels = {k: html.escape(ui[k], quote=True) for k in (
            "history_effective", "history_summary", "history_compare")}
        previous = previous_of(state.versions, text)
        compare = (
            f'<a href="{text.id}/changes/">'
            f"{html.escape(ui['history_compare_link'].format(previous=previous.id))}</a>"
            if previous
            else html.escape(ui["history_first"])
        )
        # data-label: on a phone each version is a block, each cell named (policy.css).
        rows.append(
            f'<tr><th scope="row"><a href="{text.id}/">{text.id}</a>{status}</th>'
            f'<td data-label="{labels["history_effective"]}">{html.escape(state.date(text))}</td>'
            f'<td data-label="{labels["history_summary"]}">{html.escape(text.summary)}</td>'
            f'<td data-label="{labels["history_compare"]}">{compare}</td></tr>'
        )
    head = "".join(
        f'<th scope="col">{html.escape(ui[k])}</th>'
        for k in ("history_version", "history_effective", "history_summary", "history_compare")
    )
    return (
        f'<table class="policy-history">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
        + "\n".join(rows)
        + "\n</tbody>\n</table>\n"
    )


def _kind(page: Page, lang: str) -> tuple[str, str | None]:
    rel = _relative_uri(page, lang)
    if rel == "index.md":
        return "policy", None
    if rel == "versions/index.md":
        return "history", None
    if match := _ARCHIVE.match(rel):
        return "archive", match["id"]
    if match := _CHANGES.match(rel):
        return "changes", match["id"]
    if rel == NOT_FOUND:
        return "404", None
    if rel == SERVICE_LAYOUT:
        return "service", None
    return "page", None


def _path_of(rel: str) -> str:
    """A page's address below its language's prefix: "versions/1.0.md" -> "versions/1.0/"."""
    if rel == NOT_FOUND:
        return "404.html"
    rel = rel.removesuffix(".md")
    if rel == "index":
        return ""
    return rel.removesuffix("/index") + "/"


def _title_and_description(state: _Build, page: Page) -> tuple[str, str]:
    controller = state.site.controller_name
    ui = {k: (v.replace("{controller}", controller) if isinstance(v, str) else v)
          for k, v in state.ui.items() if k.startswith(("title_", "description_", "not_found_",
                                                        "changes_title"))}
    kind, version_id = _kind(page, state.lang)
    if kind == "policy":
        text = state.current
        date = state.date(text)
        return ui["title_policy"], ui["description_policy"].format(version=text.id, date=date)
    if kind == "archive" and version_id:
        text = state.version(version_id)
        date = state.date(text)
        return (ui["title_version"].format(version=text.id),
                ui["description_version"].format(version=text.id, date=date))
    if kind == "changes" and version_id:
        text = state.version(version_id)
        previous = previous_of(state.versions, text)
        assert previous is not None  # a comparison exists for every version after the first
        return (ui["changes_title"].format(version=text.id, previous=previous.id),
                ui["description_changes"].format(version=text.id, previous=previous.id))
    if kind == "history":
        return page.title or ui["title_history"], ui["description_history"]
    if kind == "404":
        return ui["not_found_title"], ui["not_found_text"]
    if kind == "service":
        return service_layout.TITLE, service_layout.DESCRIPTION  # each service page's own
    return page.title or "", ui["description_policy"].format(
        version=state.current.id, date=state.date(state.current))


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    state = _build(config)
    kind, _ = _kind(page, state.lang)
    if kind == "policy" and not state.versions[-1].id == state.current.id:
        # The newest text is upcoming: the root shows the version in force until its day.
        page.meta = dict(state.current.meta)
        return state.current.body
    if kind == "history":
        return markdown.rstrip() + "\n\n" + _history_table(state)
    return markdown


def _text_of(state: _Build, page: Page) -> PolicyText | None:
    kind, version_id = _kind(page, state.lang)
    if kind == "policy":
        return state.current
    if kind == "archive" and version_id:
        return state.version(version_id)
    return None


def on_page_content(html_: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    state = _build(config)
    text = _text_of(state, page)
    if text is None:
        return html_
    line = html.escape(state.ui["version_line"].format(version=text.id, date=state.date(text)))
    after_title = f'<p class="policy-version">{line}</p>'
    if state.lang != state.site.default_language:
        # Every translation says which text binds, and links to it (the same page).
        binding = state.site.default_language
        after_title += (
            f'\n<p class="policy-translation">{html.escape(state.ui["translation_notice"])} '
            f'<a href="{html.escape(_binding_url(state, page))}" hreflang="{binding}">'
            f'{html.escape(state.ui["translation_link"])}</a></p>'
        )
    return html_.replace("</h1>", f"</h1>\n{after_title}", 1)


def _binding_url(state: _Build, page: Page) -> str:
    """The same policy text in the binding language: its root or its archived version."""
    kind, version_id = _kind(page, state.lang)
    prefix = state.site.prefix(state.site.default_language)
    return f"{prefix}versions/{version_id}/" if kind == "archive" else prefix


def on_page_context(
    context: dict[str, Any], *, page: Page, config: MkDocsConfig, nav: Navigation
) -> dict[str, Any]:
    state = _build(config)
    site, lang, ui = state.site, state.lang, state.ui
    text = _text_of(state, page)
    kind, version_id = _kind(page, lang)
    if kind == "service":
        # Material's header shows the page's title beside the site's: the service's own.
        page.meta["title"] = service_layout.TITLE
    path = _path_of(_relative_uri(page, lang))
    title, description = _title_and_description(state, page)
    indexable = kind != "404"
    alternates = [
        {
            "code": language.code,
            "name": language.name,
            "short": language.code.upper(),
            # From a 404 the other language's home is the useful place to go.
            "href": (service_layout.href_mark(language.code) if kind == "service"
                     else site.prefix(language.code) + (path if indexable else "")),
            "absolute": site.absolute(site.prefix(language.code) + path),
            "current": language.code == lang,
        }
        for language in site.languages
    ]
    policy: dict[str, Any] = {
        "kind": kind,
        "title": title,
        "description": description,
        "site_title": config.site_name,
        # A 404 answers at any address: it names no address of its own.
        "canonical": site.absolute(site.prefix(lang) + path) if indexable else None,
        "alternates": alternates,
        "x_default": (site.absolute(site.prefix(site.default_language) + path)
                      if indexable else None),
        "language_label": ui["language_menu"],
        "service_page": kind == "service",
        "service_marks": {"head": service_layout.HEAD, "content": service_layout.CONTENT},
        "history_url": f"{site.prefix(lang)}versions/",
        "feed_url": f"{site.prefix(lang)}feed.xml",
        "feed_title": ui["feed_title"].format(controller=site.controller_name),
        "footer": {
            "controller": ui["footer_controller"].format(controller=site.controller_name),
            "email": site.controller_email,
            "feed": ui["footer_feed"],
        },
    }
    if state.upcoming:
        policy["banner"] = {
            "text": ui["upcoming_banner"].format(date=state.date(state.upcoming)),
            "link_text": ui["see_what_changes"],
            "url": changes_url(site, lang, state.upcoming.id),
        }
    if text is not None:
        policy["print"] = ui["print_line"].format(
            version=text.id, date=state.date(text), sha256=text.sha256,
            controller=site.controller_name)
        if kind == "archive" and text.id != state.current.id:
            if text.effective > state.current.effective:
                notice = ui["upcoming_notice"].format(
                    date=state.date(text), current=state.current.id
                )
            else:
                notice = ui["archived_notice"].format(version=text.id)
            policy["notice"] = {
                "text": notice,
                "link_text": ui["read_current"],
                "url": site.prefix(lang),
            }
        policy["rights"] = {
            "title": ui["rights_title"],
            "intro": ui["rights_intro"],
            "about_version": ui["rights_about_version"].format(version=text.id),
            "items": [
                {
                    "label": right.label[lang],
                    "hint": right.hint[lang],
                    "url": site.form_url(lang, right.id, text.id),
                }
                for right in site.rights
            ],
        }
    if kind == "changes" and version_id:
        changed = state.version(version_id)
        policy["print"] = ui["print_line"].format(
            version=changed.id, date=state.date(changed), sha256=changed.sha256,
            controller=site.controller_name)
    policy["history_link_text"] = ui["history_link"]
    context["policy"] = policy
    return context


# Material's checkbox switches carry autocomplete="off" (so that Firefox does not
# restore an open drawer on "back"), which HTML allows on text-like inputs only.
# The search switch stays although search is off: Material's script requires it
# and stops with an error without it.
_TOGGLE_AUTOCOMPLETE = re.compile(r'(<input class="md-toggle"[^>]*?) autocomplete="off"')
_RELATIVE_REF = re.compile(
    r'(?P<attr>\s(?:href|src))="(?P<url>(?![a-z][a-z0-9+.-]*:|/|#|@@)[^"]*)"')
_CONFIG_BASE = re.compile(r'("base":\s*)"[^"]*"')


def on_post_page(output: str, *, page: Page, config: MkDocsConfig) -> str:
    output = _TOGGLE_AUTOCOMPLETE.sub(r"\1", output)
    state = _build(config)
    if _kind(page, state.lang)[0] in ("404", "service"):
        # The web server answers any missing address with the 404 page, and the
        # service's layout serves pages at many addresses (/request/sent/…), so
        # nothing in them may be relative to where they lie: every link starts at the root.
        own = "/" + page.file.dest_uri
        output = _RELATIVE_REF.sub(
            lambda m: f'{m["attr"]}="{urljoin(own, html.unescape(m["url"]))}"', output)
        output = _CONFIG_BASE.sub(r'\1"/"', output)
    return output


def _sitemap(site: Site, texts: dict[str, list[PolicyText]], langs: tuple[str, ...]) -> bytes:
    """The pages of `langs`, each with its twins in every language and x-default
    (sitemaps.org, with the xhtml:link alternates search engines read hreflang from);
    the form is a page of the site too."""
    default = texts[site.default_language]
    paths = ["", "versions/", "request/"]
    paths += [f"versions/{t.id}/" for t in default]
    paths += [f"versions/{t.id}/changes/" for t in default[1:]]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9" '
             'xmlns:xhtml="http://www.w3.org/1999/xhtml">']
    for lang in langs:
        for path in paths:
            own = html.escape(site.absolute(site.prefix(lang) + path))
            lines.append(f"  <url><loc>{own}</loc>")
            for other in (*site.language_codes, "x-default"):
                target = site.default_language if other == "x-default" else other
                href = html.escape(site.absolute(site.prefix(target) + path))
                lines.append(f'    <xhtml:link rel="alternate" hreflang="{other}" href="{href}"/>')
            lines.append("  </url>")
    lines.append("</urlset>")
    return ("\n".join(lines) + "\n").encode("utf-8")


def on_post_build(*, config: MkDocsConfig) -> None:
    site = _site(config)
    state = _build(config)
    feed = build_feed(site, state.lang, state.versions, state.ui)
    prefix = "" if state.lang == site.default_language else f"{state.lang}/"
    (Path(config.site_dir) / prefix / "feed.xml").write_bytes(feed)
    if state.lang != site.default_language:
        return
    texts = {
        lang: _state[lang].versions if lang in _state else load_versions(site.content_dir, lang)
        for lang in site.language_codes
    }
    manifest = build_manifest(site, texts, build_date())
    out = Path(config.site_dir) / "versions.json"
    out.write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    # The root's sitemap lists every page; each other language's root has one of its own
    # pages (a sitemap lists addresses below its folder). Material's script reads the one
    # beside each page's feed link (/en/feed.xml -> /en/sitemap.xml).
    site_dir = Path(config.site_dir)
    sitemap = _sitemap(site, texts, site.language_codes)
    (site_dir / "sitemap.xml").write_bytes(sitemap)
    # mtime=0: the same site gives the same bytes.
    (site_dir / "sitemap.xml.gz").write_bytes(gzip.compress(sitemap, mtime=0))
    for lang in site.language_codes[1:]:
        folder = site_dir / site.prefix(lang).strip("/")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sitemap.xml").write_bytes(_sitemap(site, texts, (lang,)))


__all__ = [
    "on_config",
    "on_files",
    "on_page_content",
    "on_page_context",
    "on_page_markdown",
    "on_post_build",
    "on_post_page",
    "version_url",
]
