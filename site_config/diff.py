"""A word-level comparison of two policy texts, readable without colour.

Removed and added words are wrapped in <del>/<ins> with visible bracket marks
([−…−], [+…+]) and visually hidden words for screen readers, so the difference
survives print, greyscale and speech (WCAG 1.4.1, use of colour).
"""

from __future__ import annotations

import difflib
import html
import re

_HEADING = re.compile(r"^#{1,6}\s+")
_BULLET = re.compile(r"^[-*+]\s+")
_LINE = "\n"
_BLOCK = "\n\n"


def _lines(markdown: str) -> list[tuple[str, ...]]:
    """Each source line as its words, preceded by the break (line or block) before it."""
    lines: list[tuple[str, ...]] = []
    for block in re.split(r"\n\s*\n", markdown.strip()):
        for n, line in enumerate(block.splitlines()):
            words = tuple(_BULLET.sub("• ", _HEADING.sub("", line.strip())).split())
            if lines:
                words = (_LINE if n else _BLOCK, *words)
            lines.append(words)
    return lines


def _word_ops(a: list[str], b: list[str]) -> list[tuple[str, str]]:
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    stream: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            stream += [("", t) for t in a[i1:i2]]
        else:
            stream += [("del", t) for t in a[i1:i2]]
            stream += [("ins", t) for t in b[j1:j2]]
    return stream


def _wrap(kind: str, words: list[str], labels: dict[str, str]) -> str:
    text = " ".join(html.escape(w) for w in words)
    mark = "−" if kind == "del" else "+"
    return (
        f'<{kind}><span class="visually-hidden">{html.escape(labels[kind])}: </span>'
        f'<span class="diff-mark" aria-hidden="true">[{mark}</span>{text}'
        f'<span class="diff-mark" aria-hidden="true">{mark}]</span></{kind}>'
    )


# One run of words of a paragraph: kind "" (unchanged), "del", "ins", or "br" (a line break).
_Run = tuple[str, list[str]]


def _stream(old: str, new: str) -> list[tuple[str, str]]:
    """`new` and the words removed from `old`, as (kind, token), kind "", "del" or "ins"."""
    a, b = _lines(old), _lines(new)
    # Lines first, then words within the changed lines only: a policy version
    # changes a few words of hundreds, and a word diff of everything is the
    # slow part of the build (bench/site_build.py).
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    stream: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            stream += [("", t) for line in a[i1:i2] for t in line]
        else:
            stream += _word_ops(
                [t for line in a[i1:i2] for t in line], [t for line in b[j1:j2] for t in line]
            )
    return stream


def _count_changes(stream: list[tuple[str, str]]) -> int:
    return sum(
        1 for i, (kind, _) in enumerate(stream) if kind and (i == 0 or not stream[i - 1][0])
    )


def _paragraphs(stream: list[tuple[str, str]]) -> list[list[_Run]]:
    """The stream as paragraphs, each a list of runs of words of one kind."""
    blocks: list[list[_Run]] = []
    parts: list[_Run] = []
    run_kind, run_words = "", []

    def flush_run() -> None:
        nonlocal run_words
        if run_words:
            parts.append((run_kind, run_words))
        run_words = []

    for kind, token in stream:
        if token in (_LINE, _BLOCK):
            # a break removed or added in place is shown as the break it becomes
            if kind == "del":
                continue
            flush_run()
            if token == _BLOCK:
                blocks.append(parts)
                parts = []
            else:
                parts.append(("br", []))
            continue
        if kind != run_kind:
            flush_run()
            run_kind = kind
        run_words.append(token)
    flush_run()
    blocks.append(parts)
    return blocks


def word_diff_html(old: str, new: str, labels: dict[str, str]) -> tuple[str, int]:
    """HTML of `new` with the changes from `old` marked, and the number of changed runs.

    `labels` gives the spoken words for {"del": ..., "ins": ...}.
    """
    stream = _stream(old, new)

    def html_of(run: _Run) -> str:
        kind, words = run
        if kind == "br":
            return "<br>"
        if kind:
            return _wrap(kind, words, labels)
        return " ".join(html.escape(w) for w in words)

    blocks = [" ".join(html_of(run) for run in block) for block in _paragraphs(stream)]
    body = "\n".join(f"<p>{b}</p>" for b in blocks if b)
    return f'<div class="policy-diff">\n{body}\n</div>', _count_changes(stream)


# Characters Markdown would read as markup inside a paragraph (CommonMark lets
# any ASCII punctuation be escaped with a backslash).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]~|#<>!])")
_BLOCK_MARKER = re.compile(r"\A(\d+[.)]|[-+=]+)\Z")


def _markdown_words(words: list[str], first: bool) -> str:
    escaped = [_MARKDOWN_SPECIAL.sub(r"\\\1", w.replace("&", "&amp;")) for w in words]
    if first and escaped and _BLOCK_MARKER.match(escaped[0]):
        # a paragraph starting "1.", "-" or "---" would become a list, a rule or a heading
        escaped[0] = escaped[0][:-1] + "\\" + escaped[0][-1]
    return " ".join(escaped)


def word_diff_markdown(old: str, new: str) -> tuple[str, int]:
    """GitHub-flavoured Markdown of the paragraphs of `new` that changed since `old`, with
    removed words as <del>[−…−]</del> and added ones as <ins>[+…+]</ins> (the site's marks);
    "…" stands for unchanged paragraphs left out. Returns it and the number of changed runs.
    """
    stream = _stream(old, new)
    shown: list[str] = []
    skipped = False
    for block in _paragraphs(stream):
        if not any(kind in ("del", "ins") for kind, _ in block):
            skipped = skipped or bool(block)
            continue
        if skipped:
            shown.append("…")
        skipped = False
        parts = []
        for n, (kind, words) in enumerate(block):
            if kind == "br":
                parts.append("<br>")
                continue
            text = _markdown_words(words, first=n == 0)
            if kind == "del":
                parts.append(f"<del>[−{text}−]</del>")
            elif kind == "ins":
                parts.append(f"<ins>[+{text}+]</ins>")
            else:
                parts.append(text)
        shown.append(" ".join(parts))
    if shown and skipped:
        shown.append("…")
    return "\n\n".join(shown), _count_changes(stream)
