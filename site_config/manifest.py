"""/versions.json: every version, its fingerprints and addresses (the DESIGN contract)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from site_config.facts import Site
from site_config.versions import PolicyText, current_of, upcoming_of


def version_url(site: Site, lang: str, version_id: str) -> str:
    return f"{site.prefix(lang)}versions/{version_id}/"


def changes_url(site: Site, lang: str, version_id: str) -> str:
    return f"{site.prefix(lang)}versions/{version_id}/changes/"


def build_manifest(
    site: Site, texts: dict[str, list[PolicyText]], today: dt.date
) -> dict[str, Any]:
    default = texts[site.default_language]
    upcoming = upcoming_of(default, today)
    versions = []
    for text in default:
        by_lang = {
            lang: next(t for t in texts[lang] if t.id == text.id)
            for lang in site.language_codes
        }
        versions.append(
            {
                "id": text.id,
                "effective": text.effective.isoformat(),
                "texts": {
                    lang: {"sha256": t.sha256, "url": version_url(site, lang, text.id)}
                    for lang, t in by_lang.items()
                },
                "summary": {lang: t.summary for lang, t in by_lang.items()},
            }
        )
    return {
        "current": current_of(default, today).id,
        "upcoming": upcoming.id if upcoming else None,
        "versions": versions,
    }
