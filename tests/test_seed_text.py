"""Version 1.0 is the seed text word for word, and every translation is complete."""

from __future__ import annotations

import hashlib
import re

import pytest
from site_tree import LANGUAGES, ROOT

from site_config.versions import load_versions, split_front_matter

# A byte-for-byte copy of the seed text the shop handed over, committed so that
# the clone alone is enough to run the suite.
SEED = ROOT / "tests" / "data" / "privacy-policy-lv.txt"
SEED_SHA256 = "d5ce2ec10eceef9be5644b8fe619dcdd83af1a3985de4ee309de9a607fd5cd1d"
CONTENT = ROOT / "content"


def _words_of_markdown(markdown: str) -> list[str]:
    """The words a reader sees: Markdown's heading, list and link marks removed."""
    lines = []
    for line in markdown.splitlines():
        line = re.sub(r"^#{1,6}\s+", "", line)
        line = re.sub(r"^[-*]\s+", "", line)
        lines.append(line.replace("<", "").replace(">", ""))
    return " ".join(lines).split()


def _version_text(lang: str, version: str) -> str:
    text = next(t for t in load_versions(CONTENT, lang) if t.id == version)
    return text.path.read_text(encoding="utf-8")


def test_latvian_1_0_is_the_seed_word_for_word() -> None:
    """Every word of the seed, typos included, appears in order and nothing is added."""
    seed_words = SEED.read_text(encoding="utf-8").replace("•", " ").split()
    _, body = split_front_matter(_version_text("lv", "1.0"))
    assert _words_of_markdown(body) == seed_words


def test_latvian_1_0_keeps_the_seed_structure() -> None:
    """The seed's headings, two numbered lists and two bullet lists are Markdown structure."""
    _, body = split_front_matter(_version_text("lv", "1.0"))
    assert len(re.findall(r"^#{1,3} ", body, re.M)) == 4
    assert len(re.findall(r"^\d\. ", body, re.M)) == 8
    assert len(re.findall(r"^- ", body, re.M)) == 7


@pytest.mark.parametrize("lang", LANGUAGES[1:])
def test_translation_of_1_0_has_the_same_structure_as_latvian(lang: str) -> None:
    """Each translation has every heading, list item and paragraph of the Latvian text,
    and the contact e-mail."""
    _, lv = split_front_matter(_version_text("lv", "1.0"))
    _, translated = split_front_matter(_version_text(lang, "1.0"))

    def shape(body: str) -> list[str]:
        blocks = []
        for line in body.splitlines():
            if line.startswith("#"):
                blocks.append(line.split()[0])
            elif re.match(r"^\d\. ", line):
                blocks.append("ol")
            elif line.startswith("- "):
                blocks.append("ul")
            elif line.strip():
                blocks.append("p")
        return blocks

    assert shape(translated) == shape(lv)
    assert "<info@pulkstenu-outlets.lv>" in translated


def test_every_language_of_1_0_is_effective_on_the_same_day() -> None:
    """Every language of 1.0 takes effect on 2026-11-24."""
    for lang in LANGUAGES:
        text = next(t for t in load_versions(CONTENT, lang) if t.id == "1.0")
        assert text.effective.isoformat() == "2026-11-24"


def test_seed_copy_is_committed_unchanged() -> None:
    """The committed seed copy is in the repository and still the bytes the shop handed over."""
    assert SEED.is_file(), SEED
    assert hashlib.sha256(SEED.read_bytes()).hexdigest() == SEED_SHA256
