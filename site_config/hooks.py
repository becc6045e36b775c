"""MkDocs hooks: publish the policy's versions.

For the language being built (static-i18n builds one language at a time) this
adds the archived page of the newest version, a comparison page for every
version after the first, the history table, the version line under each
policy title, the "use your rights" call to action, and /versions.json.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.nav import Navigation
from mkdocs.structure.pages import Page

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


def _generated(config: MkDocsConfig, site: Site, lang: str, rel: str, content: str) -> File:
    """A page made by this hook, placed where static-i18n places that language's pages."""
    prefix = "" if lang == site.default_language else f"{lang}/"
    page = File.generated(config, f"{lang}/{rel}", content=content)
    page.dest_uri = prefix + rel.removesuffix(".md") + "/index.html"
    # static-i18n's language switcher reads these to link each page to its twin.
    alternates = {}
    for other in site.language_codes:
        twin = File.generated(config, f"{other}/{rel}", content="")
        other_prefix = "" if other == site.default_language else f"{other}/"
        twin.dest_uri = other_prefix + rel.removesuffix(".md") + "/index.html"
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
            status = " " + ui["history_current"]
        elif state.upcoming and text.effective > state.current.effective:
            status = " " + ui["history_upcoming"]
        previous = previous_of(state.versions, text)
        compare = (
            f'<a href="{text.id}/changes/">'
            f"{html.escape(ui['history_compare_link'].format(previous=previous.id))}</a>"
            if previous
            else html.escape(ui["history_first"])
        )
        rows.append(
            f'<tr><th scope="row"><a href="{text.id}/">{text.id}</a>{html.escape(status)}</th>'
            f"<td>{html.escape(state.date(text))}</td>"
            f"<td>{html.escape(text.summary)}</td><td>{compare}</td></tr>"
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
    return "page", None


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
    policy: dict[str, Any] = {
        "history_url": f"{site.prefix(lang)}versions/",
        "feed_url": f"{site.prefix(lang)}feed.xml",
        "feed_title": ui["feed_title"].format(controller=site.controller_name),
    }
    if state.upcoming:
        policy["banner"] = {
            "text": ui["upcoming_banner"].format(date=state.date(state.upcoming)),
            "link_text": ui["see_what_changes"],
            "url": changes_url(site, lang, state.upcoming.id),
        }
    if text is not None:
        kind, _ = _kind(page, lang)
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
    policy["history_link_text"] = ui["history_link"]
    context["policy"] = policy
    return context


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


__all__ = [
    "on_config",
    "on_files",
    "on_page_content",
    "on_page_context",
    "on_page_markdown",
    "on_post_build",
    "version_url",
]
