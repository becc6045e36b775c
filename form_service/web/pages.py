"""Rendering: every page of the service inside the policy site's header and styles."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from starlette.datastructures import URL
from starlette.responses import HTMLResponse
from starlette.types import Scope

from form_service.web.assets import SiteLook
from form_service.web.i18n import language_of_path, path_in_language, texts_of
from site_config.facts import Site

TEMPLATES = Path(__file__).parent.parent / "templates"

# Pages carry one-time tokens and, after an error, what the customer typed:
# neither a shared cache nor the browser's back/forward cache may keep them.
NO_STORE = {"Cache-Control": "no-store"}


class LruCache:
    """A small least-recently-used map (used on the event loop only: no lock)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[Any, str] = OrderedDict()

    def get(self, key: Any) -> str | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: Any, value: str) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class Pages:
    def __init__(self, site: Site, look: SiteLook, params: Mapping[str, Any]) -> None:
        self.site = site
        self.look = look
        # Values the texts of error pages may name ({hours}, {details_max}, ...).
        self.params = dict(params)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            # A text missing from a catalogue is a bug to see in the tests, not a blank.
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        # Blank form pages by address and version (views._render_form).
        self.blank_forms = LruCache(128)

    def _language_hrefs(self, scope: Scope, twin: bool) -> dict[str, str]:
        """The language menu: the same page and query in every language, or, for a page
        with no twin (the e-mail link's page), each language's home."""
        url = URL(scope=scope)
        query = f"?{url.query}" if url.query else ""
        return {
            language.code: (path_in_language(self.site, url.path, language.code) + query
                            if twin else self.site.prefix(language.code))
            for language in self.site.languages
        }

    def _head_links(self, scope: Scope, lang: str) -> list[dict[str, str]]:
        """The form is a page of the site, in the sitemap (with its twins): its canonical
        address, as on the policy pages. The pages after it are one person's, at addresses
        nobody else opens: no link."""
        path = URL(scope=scope).path
        if path != self.site.prefix(lang) + "request/":
            return []
        return [{"rel": "canonical", "href": self.site.absolute(path), "hreflang": ""}]

    def render(
        self,
        scope: Scope,
        template: str,
        context: Mapping[str, Any],
        *,
        status: int = 200,
        lang: str | None = None,
        headers: Mapping[str, str] | None = None,
        twin: bool = True,
    ) -> HTMLResponse:
        html = self.html(scope, template, context, lang=lang, twin=twin)
        return self.response(html, status=status, headers=headers)

    @staticmethod
    def response(html: str, *, status: int = 200,
                 headers: Mapping[str, str] | None = None) -> HTMLResponse:
        return HTMLResponse(html, status_code=status, headers={**NO_STORE, **(headers or {})})

    def html(
        self,
        scope: Scope,
        template: str,
        context: Mapping[str, Any],
        *,
        lang: str | None = None,
        twin: bool = True,
    ) -> str:
        lang = lang or language_of_path(self.site, scope.get("path", "/"))
        texts = texts_of(self.site, lang)
        return self.env.get_template(template).render(
            lang=lang,
            t=texts,
            home=self.site.prefix(lang),
            controller=self.site.controller_name,
            layout=self.look.layouts[lang],
            head_links=self._head_links(scope, lang),
            language_hrefs=self._language_hrefs(scope, twin),
            **context,
        )

    def error(
        self,
        scope: Scope,
        status: int,
        key: str,
        *,
        lang: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> HTMLResponse:
        """A plain page: a title and a sentence from `<key>_title` / `<key>_text`."""
        return self.render(
            scope,
            "error.html",
            {"key": key, "params": {**self.params, **(params or {})}},
            status=status,
            lang=lang,
            headers=headers,
            # A verification link has no twin in the other language.
            twin=lang is None,
        )
