"""The customer's language: which one a URL is in, its texts, and WTForms' messages in it.

Every text comes from site_config/texts/*.<lang>.yml (the form's own are in
form.<lang>.yml, keys `form_*`). WTForms ships no Latvian, so its messages are
translated from the `form_wtforms` table of the same catalogue: English msgid
to text, or to {one, other} for messages with a number in them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from site_config.facts import Site, load_ui_texts

WTFORMS_TABLE = "form_wtforms"


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


# CLDR plural categories of the languages we know; a language not listed here
# uses the English rule. Only the categories our catalogue spells are returned
# ("one" and "other"); Latvian's "zero" takes the same words as "other" in every
# message we have.
_PLURAL_RULES: dict[str, Callable[[int], str]] = {
    "lv": lambda n: "one" if n % 10 == 1 and n % 100 != 11 else "other",
    "en": lambda n: "one" if n == 1 else "other",
}


def plural_category(lang: str, n: int) -> str:
    return _PLURAL_RULES.get(lang, _PLURAL_RULES["en"])(n)


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
