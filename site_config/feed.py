"""An Atom feed (RFC 4287) of policy versions per language: /feed.xml, /en/feed.xml.

Readers' most common wish of a policy site is to be told when the policy
changes; a feed tells them without an account, a cookie or an e-mail address.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from xml.etree import ElementTree as ET

from site_config.facts import Site, format_date
from site_config.ledger import read_ledger
from site_config.manifest import changes_url, version_url
from site_config.versions import PolicyText

ATOM = "http://www.w3.org/2005/Atom"


def _stamp(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


def build_feed(site: Site, lang: str, versions: list[PolicyText], ui: dict[str, Any]) -> bytes:
    ET.register_namespace("", ATOM)
    ledger = read_ledger(site.root)
    domain = site.controller_email.rsplit("@", 1)[-1]
    base = f"tag:{domain},2026:privacy-policy/{lang}"

    def announced(text: PolicyText) -> dt.date:
        entry = ledger.get(text.id)
        return dt.date.fromisoformat(entry.sealed_on) if entry else text.effective

    feed = ET.Element(f"{{{ATOM}}}feed", {"xml:lang": lang})
    ET.SubElement(feed, f"{{{ATOM}}}id").text = base
    ET.SubElement(feed, f"{{{ATOM}}}title").text = ui["feed_title"].format(
        controller=site.controller_name)
    ET.SubElement(feed, f"{{{ATOM}}}updated").text = _stamp(
        max((announced(t) for t in versions), default=dt.date.today())
    )
    author = ET.SubElement(feed, f"{{{ATOM}}}author")
    ET.SubElement(author, f"{{{ATOM}}}name").text = site.controller_name
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "self", "href": f"{site.prefix(lang)}feed.xml"})
    ET.SubElement(feed, f"{{{ATOM}}}link", {"rel": "alternate", "href": site.prefix(lang)})
    for text in reversed(versions):
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        ET.SubElement(entry, f"{{{ATOM}}}id").text = f"{base}/{text.id}"
        ET.SubElement(entry, f"{{{ATOM}}}title").text = ui["version_line"].format(
            version=text.id, date=format_date(ui, text.effective)
        )
        ET.SubElement(entry, f"{{{ATOM}}}updated").text = _stamp(announced(text))
        ET.SubElement(entry, f"{{{ATOM}}}summary").text = text.summary
        ET.SubElement(
            entry, f"{{{ATOM}}}link",
            {"rel": "alternate", "type": "text/html", "href": version_url(site, lang, text.id)},
        )
        if text is not versions[0]:
            ET.SubElement(
                entry, f"{{{ATOM}}}link",
                {"rel": "related", "type": "text/html", "title": ui["see_what_changes"],
                 "href": changes_url(site, lang, text.id)},
            )
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
