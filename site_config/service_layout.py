"""The layout page of the service's pages: one per language, built with the site.

The form, its confirmation, the page behind the e-mail's link and the service's
error pages are pages of the same site: the build writes, per language, a page
at the form's address (<prefix>request/index.html) with Material's header,
navigation and footer exactly as on the policy pages, and these marks where
each service page puts its own title, description, head links, language links
and content. form_service/web/assets.py reads it at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TITLE = "@@policy-service-title@@"
DESCRIPTION = "@@policy-service-description@@"
HEAD = "<!-- policy-service-head -->"
CONTENT = "<!-- policy-service-content -->"


def href_mark(lang: str) -> str:
    """Where the language menu links the page in `lang` (the same page, with its query)."""
    return f"@@policy-service-href-{lang}@@"


_MARK = re.compile(
    r"@@policy-service-(?P<name>title|description)@@"
    r"|@@policy-service-href-(?P<lang>[a-z]{2,3})@@"
    r"|<!-- policy-service-(?P<block>head|content) -->"
)


@dataclass(frozen=True)
class Part:
    kind: str  # "text", "title", "description", "head", "content" or "href"
    text: str  # the text, or the language of an "href"


def split_layout(html: str) -> list[Part]:
    """The layout as text and the marks between, in order."""
    parts: list[Part] = []
    at = 0
    for match in _MARK.finditer(html):
        parts.append(Part("text", html[at:match.start()]))
        if match["lang"]:
            parts.append(Part("href", match["lang"]))
        else:
            parts.append(Part(match["name"] or match["block"], ""))
        at = match.end()
    parts.append(Part("text", html[at:]))
    return parts
