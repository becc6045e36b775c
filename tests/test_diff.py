"""The word comparison: what is marked, and that it reads without colour."""

from __future__ import annotations

import re

from site_config.diff import word_diff_html, word_diff_markdown

LABELS = {"del": "removed", "ins": "added"}


def _marked(html: str, kind: str) -> list[str]:
    runs = re.findall(rf"<{kind}>(.*?)</{kind}>", html, re.S)
    return [re.sub(r"<[^>]+>|\[[−+]|[−+]\]|removed: |added: ", "", r) for r in runs]


def test_only_changed_words_are_marked() -> None:
    """A changed word inside a long paragraph is the only thing marked."""
    old = "# Title\n\n" + "word " * 300 + "old end.\n"
    new = "# Title\n\n" + "word " * 300 + "new end.\n"
    html, changes = word_diff_html(old, new, LABELS)
    assert changes == 1
    assert _marked(html, "del") == ["old"] and _marked(html, "ins") == ["new"]


def test_added_list_item_and_removed_paragraph() -> None:
    """Whole lines added or removed are marked, and the rest is left alone."""
    old = "Intro.\n\n- a\n- b\n\nGone paragraph.\n\nEnd."
    new = "Intro.\n\n- a\n- b\n- c\n\nEnd."
    html, changes = word_diff_html(old, new, LABELS)
    assert changes == 1  # the added item and the removed paragraph touch: one run
    assert _marked(html, "ins") == ["• c"]
    assert _marked(html, "del") == ["Gone paragraph."]


def test_marks_are_visible_and_spoken() -> None:
    """Each change carries bracket marks and a visually hidden spoken label."""
    html, _ = word_diff_html("a b", "a c", LABELS)
    assert '<span class="visually-hidden">removed: </span>' in html
    assert '<span class="diff-mark" aria-hidden="true">[−</span>b' in html
    assert '<span class="diff-mark" aria-hidden="true">[+</span>c' in html


def test_text_is_escaped() -> None:
    """Markup in the policy text is shown as text, never injected."""
    html, _ = word_diff_html("x", "<script>x</script>", LABELS)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_identical_texts_have_no_changes() -> None:
    """Comparing a text with itself marks nothing."""
    html, changes = word_diff_html("# T\n\nSame.", "# T\n\nSame.", LABELS)
    assert changes == 0 and "<del>" not in html and "<ins>" not in html


def test_markdown_shows_only_changed_paragraphs_with_the_site_marks() -> None:
    """The Markdown comparison keeps the changed paragraphs, marked as on the site, and "…"."""
    old = "# Title\n\nFirst stays.\n\nSecond old words.\n\nThird stays."
    new = "# Title\n\nFirst stays.\n\nSecond new words.\n\nThird stays."
    markdown, changes = word_diff_markdown(old, new)
    assert changes == 1
    assert markdown == "…\n\nSecond <del>[−old−]</del> <ins>[+new+]</ins> words.\n\n…"


def test_markdown_escapes_what_markdown_would_read_as_markup() -> None:
    """Stars, brackets, pipes and a leading "1." are shown as text, not as markup."""
    markdown, _ = word_diff_markdown("1. *a* [b](c) | <i> x", "1. *a* [b](c) | <i> y")
    assert markdown == r"1\. \*a\* \[b\](c) \| \<i\> <del>[−x−]</del> <ins>[+y+]</ins>"
