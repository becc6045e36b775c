"""Plural categories (CLDR) of any language, for texts that hold a number.

A text with a number has one form per category of its language: English one/other,
Latvian zero/one/other, Russian one/few/many/other (1 символ, 2 символа, 5 символов).
The rules come from babel's copy of CLDR, so that a language added to mkdocs.yml
needs no code.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from babel import Locale, UnknownLocaleError


@cache
def _rule(lang: str) -> Callable[[int], str]:
    try:
        return Locale.parse(lang).plural_form  # type: ignore[no-any-return]
    except (ValueError, UnknownLocaleError):
        # A code CLDR does not know: the English rule, so that a message still shows.
        return Locale.parse("en").plural_form  # type: ignore[no-any-return]


def plural_category(lang: str, n: int) -> str:
    """The CLDR plural category of the whole number `n` in `lang`."""
    return str(_rule(lang)(n))


@cache
def integer_plural_categories(lang: str) -> frozenset[str]:
    """The categories whole numbers take in `lang`, and "other", which every entry needs
    (a form falls back to it). The editor check asks each plural text for exactly these."""
    rule = _rule(lang)
    return frozenset({str(rule(n)) for n in range(1000)} | {"other"})
