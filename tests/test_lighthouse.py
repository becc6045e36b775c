"""Lighthouse 12.2.3 (tools/lighthouse, `make lighthouse`) in Debian's Chromium.

Accessibility, best practices and SEO do not move with a busy machine: they are 100
on the home, comparison and form pages (the form with its errors too), in both
languages, on phones and desktops.
Performance does move; bench/lighthouse.py prints it for every page kind.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from page_kinds import PREFIXES, SUBMIT, Served, every_page_kind
from site_tree import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CATEGORIES = ["accessibility", "best-practices", "seo"]


@pytest.fixture(scope="module")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with every_page_kind(tmp_path_factory.mktemp("lighthouse")) as served_site:
        yield served_site


def _lighthouse() -> object:
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import lighthouse
    finally:
        sys.path.remove(str(ROOT / "bench"))
    if not (lighthouse.TOOL / "node_modules" / "lighthouse").is_dir():
        pytest.fail("Lighthouse is not installed: run `make lighthouse` (npm ci in "
                    "tools/lighthouse).")
    return lighthouse


def test_accessibility_best_practices_and_seo_are_100(served_site: Served) -> None:
    """Home, comparison, form and form with errors, both languages, mobile and desktop: 100
    in accessibility, best practices and SEO, and no audit of those categories fails."""
    lighthouse = _lighthouse()
    targets = [{"name": f"{kind} ({lang})", "url": served_site.url(kind, lang)}
               for lang in PREFIXES for kind in ("policy", "comparison", "form")]
    targets += [{"name": f"form with errors ({lang})", "url": served_site.url("form", lang),
                 "submit": SUBMIT} for lang in PREFIXES]
    rows = lighthouse.lighthouse(targets, ["mobile", "desktop"], CATEGORIES)  # type: ignore[attr-defined]
    assert len(rows) == 16
    below = {
        (row["name"], row["form_factor"]): (row.get("error") or
                                            {c: s for c, s in row["scores"].items() if s != 1},
                                            row.get("failed"))
        for row in rows
        if row.get("error") or any(score != 1 for score in row["scores"].values())
    }
    assert below == {}
    assert all(set(row["scores"]) == set(CATEGORIES) for row in rows)
