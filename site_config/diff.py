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


def word_diff_html(old: str, new: str, labels: dict[str, str]) -> tuple[str, int]:
    """HTML of `new` with the changes from `old` marked, and the number of changed runs.

    `labels` gives the spoken words for {"del": ..., "ins": ...}.
    """
    a, b = _lines(old), _lines(new)
    # Lines first, then words within the changed lines only: a policy version
    # changes a few words of hundreds, and a word diff of everything is the
    # slow part of the build (bench/site_build.py).
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    # A stream of (kind, token) where kind is "", "del" or "ins".
    stream: list[tuple[str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            stream += [("", t) for line in a[i1:i2] for t in line]
        else:
            stream += _word_ops(
                [t for line in a[i1:i2] for t in line], [t for line in b[j1:j2] for t in line]
            )
    changes = sum(
        1 for i, (kind, _) in enumerate(stream) if kind and (i == 0 or not stream[i - 1][0])
    )

    blocks: list[str] = []
    parts: list[str] = []
    run_kind, run_words = "", []

    def flush_run() -> None:
        nonlocal run_words
        if run_words:
            if run_kind:
                parts.append(_wrap(run_kind, run_words, labels))
            else:
                parts.append(" ".join(html.escape(w) for w in run_words))
        run_words = []

    for kind, token in stream:
        if token in (_LINE, _BLOCK):
            # a break removed or added in place is shown as the break it becomes
            if kind == "del":
                continue
            flush_run()
            if token == _BLOCK:
                blocks.append(" ".join(parts))
                parts = []
            else:
                parts.append("<br>")
            continue
        if kind != run_kind:
            flush_run()
            run_kind = kind
        run_words.append(token)
    flush_run()
    blocks.append(" ".join(parts))
    body = "\n".join(f"<p>{b}</p>" for b in blocks if b)
    return f'<div class="policy-diff">\n{body}\n</div>', changes
