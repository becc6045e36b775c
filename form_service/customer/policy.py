"""Which policy text a form refers to: the version named in `?v=`, else the one in force."""

from __future__ import annotations

import datetime as dt

from site_config.facts import Site
from site_config.versions import PolicyText, current_of, load_versions


class PolicyVersions:
    """Every version of every language, read once at start-up (they change only on deploy)."""

    def __init__(self, site: Site) -> None:
        self.by_language = {
            lang: load_versions(site.content_dir, lang) for lang in site.language_codes
        }

    def find(self, lang: str, version_id: str) -> PolicyText | None:
        return next((t for t in self.by_language[lang] if t.id == version_id), None)

    def choose(self, lang: str, requested: str | None, today: dt.date) -> PolicyText:
        """The version the customer came from (a real one only), else the one in force today."""
        if requested:
            found = self.find(lang, requested)
            if found is not None:
                return found
        return current_of(self.by_language[lang], today)
