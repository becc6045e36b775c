"""The customer's language: which one a URL is in, its texts, and WTForms' messages in it.

Every text comes from site_config/texts/*.<lang>.yml (the form's own are in
form.<lang>.yml, keys `form_*`). WTForms ships no Latvian, so its messages are
translated from the `form_wtforms` table of the same catalogue: English msgid
to text, or to one text per CLDR plural category of the language (Latvian
zero/one/other, Russian one/few/many/other) for messages with a number in them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from site_config.facts import Site, load_ui_texts
from site_config.plurals import plural_category

WTFORMS_TABLE = "form_wtforms"

__all__ = ["Translations", "language_of_path", "path_in_language", "plural_category",
           "texts_of"]


def language_of_path(site: Site, path: str) -> str:
    """The language of a URL path: its first segment if that names a language, else the default."""
    first = path.lstrip("/").split("/", 1)[0]
    if first in site.language_codes and first != site.default_language:
        return first
    return site.default_language


def path_in_language(site: Site, path: str, lang: str) -> str:
    """The same page in another language: swap the language prefix of the path."""
    current = language_of_path(site, path)
    rest = path.removeprefix(site.prefix(current)).lstrip("/")
    return site.prefix(lang) + rest


def texts_of(site: Site, lang: str) -> Mapping[str, Any]:
    return load_ui_texts(site.root, lang)


class Translations:
    """WTForms' translations interface (gettext/ngettext) backed by our catalogue."""

    def __init__(self, site: Site, lang: str) -> None:
        self.lang = lang
        table = texts_of(site, lang).get(WTFORMS_TABLE) or {}
        self._table: Mapping[str, Any] = table

    def gettext(self, string: str) -> str:
        entry = self._table.get(string)
        return entry if isinstance(entry, str) else string

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        entry = self._table.get(singular)
        if isinstance(entry, Mapping):
            category = plural_category(self.lang, n)
            return str(entry.get(category) or entry["other"])
        return singular if n == 1 else plural
