"""A word-level comparison of two policy texts, readable without colour.

The site's comparison (word_diff_html) is of the rendered text, block by block:
headings, lists and links stay what they are. Removed and added words are
wrapped in <del>/<ins> with visible bracket marks ([−…−], [+…+]) and visually
hidden words for screen readers, so the difference survives print, greyscale
and speech (WCAG 1.4.1, use of colour).
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Callable

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


def word_diff_html(old: str, new: str, labels: dict[str, str],
                   render: Callable[[str], str] | None = None) -> tuple[str, int]:
    """HTML of `new` with the changes from `old` marked, and the number of changed runs.

    Both texts are rendered from Markdown first (`render`, by default Python-Markdown)
    and compared block by block, then word by word inside the blocks that changed, so
    the comparison keeps the document's headings, numbered and bulleted lists and
    links, with the changed words marked inside them. `labels` gives the spoken words
    for {"del": ..., "ins": ...}.
    """
    to_html = render or _default_render
    a = _html_tokens(to_html(_escape_raw_html(old)))
    b = _html_tokens(to_html(_escape_raw_html(new)))
    ops = _block_ops(a, b)
    body = _emit(ops, labels)
    changes = sum(1 for i, (kind, _) in enumerate(ops)
                  if kind and _is_word(ops[i][1]) and not _changed_before(ops, i))
    return f'<div class="policy-diff">\n{body}\n</div>', changes


def _default_render(markdown_text: str) -> str:
    import markdown

    return markdown.markdown(markdown_text, extensions=["attr_list"])


# Markdown lets raw HTML through; a policy text's "<" is shown as text, except in
# the autolinks Markdown itself turns into links (<info@…>, <https://…>).
_RAW_TAG = re.compile(r"<(?![a-zA-Z][a-zA-Z0-9+.-]*:[^\s<>]*>|[^\s<>@]+@[^\s<>]+>)")


def _escape_raw_html(text: str) -> str:
    return _RAW_TAG.sub("&lt;", text)


# A token of rendered HTML: a tag, or a word with whether a space came before it.
_Token = tuple[str, str, bool]  # ("tag" | "word", text, space_before)
_TOKEN = re.compile(r"(?P<space>\s*)(?:(?P<tag><[^>]*>)|(?P<word>[^<\s]+))")
_TAG_NAME = re.compile(r"</?([a-zA-Z0-9]+)")
_VOID = {"br", "hr", "img", "input", "wbr"}
_BLOCK_TAGS = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "li", "div", "blockquote",
               "table", "thead", "tbody", "tr", "th", "td", "pre", "hr"}
_HEADING = re.compile(r"^<(/?)h([1-6])\b")


def _html_tokens(rendered: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(rendered):
        space = bool(match["space"])
        if match["tag"]:
            tokens.append(("tag", _demote(match["tag"]), space))
        elif match["word"]:
            tokens.append(("word", match["word"], space))
    return tokens


def _demote(tag: str) -> str:
    """h1 -> h2 …: the comparison page has its own h1 above the compared text."""
    return _HEADING.sub(lambda m: f"<{m[1]}h{min(int(m[2]) + 1, 6)}", tag)


def _is_word(token: _Token) -> bool:
    return token[0] == "word"


def _blocks(tokens: list[_Token]) -> list[list[_Token]]:
    """The units compared first: each top-level element (a heading, a paragraph), and in a
    top-level list each item on its own (with the list's tags as units of their own), so
    that an item added or removed is that item, not words shifted between items."""
    blocks: list[list[_Token]] = []
    stack: list[str] = []
    for token in tokens:
        name = _TAG_NAME.match(token[1]) if token[0] == "tag" else None
        tag = name[1].lower() if name else ""
        closing = token[1].startswith("</")
        opens = bool(tag) and tag not in _VOID and not token[1].endswith("/>") and not closing
        in_list = stack[:1] in (["ul"], ["ol"])
        if not stack or (in_list and len(stack) == 1) or (closing and len(stack) == 1):
            blocks.append([])
        blocks[-1].append(token)
        if opens:
            stack.append(tag)
        elif closing and tag and stack:
            stack.pop()
        if opens and tag in ("ul", "ol") and len(stack) == 1:
            blocks.append([])  # the list's own tag is a unit: the items come next
    return [block for block in blocks if block]


def _key(token: _Token) -> tuple[str, str]:
    return token[0], token[1]


# One step of the comparison: kind "" (unchanged, from `new`), "del" (only in old)
# or "ins" (only in new), and the token.
_Op = tuple[str, _Token]


def _block_ops(a: list[_Token], b: list[_Token]) -> list[_Op]:
    """Blocks first, then tokens within the blocks that changed: a version changes a few
    words of hundreds, and a word diff of everything is the slow part of the build."""
    blocks_a, blocks_b = _blocks(a), _blocks(b)
    keys_a = [tuple(_key(t) for t in block) for block in blocks_a]
    keys_b = [tuple(_key(t) for t in block) for block in blocks_b]
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    ops: list[_Op] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            ops += [("", t) for block in blocks_b[j1:j2] for t in block]
            continue
        old = [t for block in blocks_a[i1:i2] for t in block]
        new = [t for block in blocks_b[j1:j2] for t in block]
        words = difflib.SequenceMatcher(a=[_key(t) for t in old], b=[_key(t) for t in new],
                                        autojunk=False)
        for wop, k1, k2, l1, l2 in words.get_opcodes():
            if wop == "equal":
                ops += [("", t) for t in new[l1:l2]]
            else:
                ops += [("del", t) for t in old[k1:k2]]
                ops += [("ins", t) for t in new[l1:l2]]
    return ops


def _changed_before(ops: list[_Op], i: int) -> bool:
    """Whether a changed word continues a run of changes (only tags or changes since)."""
    for kind, token in reversed(ops[:i]):
        if _is_word(token):
            return bool(kind)
        if not kind:
            return False
    return False


def _wrap(kind: str, words: list[str], labels: dict[str, str]) -> str:
    text = " ".join(words)
    mark = "−" if kind == "del" else "+"
    return (
        f'<{kind}><span class="visually-hidden">{html.escape(labels[kind])}: </span>'
        f'<span class="diff-mark" aria-hidden="true">[{mark}</span>{text}'
        f'<span class="diff-mark" aria-hidden="true">{mark}]</span></{kind}>'
    )


def _emit(ops: list[_Op], labels: dict[str, str]) -> str:
    """The new document's markup with removed words put back where they were and every
    changed run wrapped. Tags only in the old text are dropped; removed words where the
    new text has no room for words (between list items, between blocks) get an item or
    a paragraph of their own, so the result stays valid HTML."""
    out: list[str] = []
    open_tags: list[str] = []
    run_kind, run_words, run_space = "", [], False
    after_run = False  # the last thing written was a changed run

    def flush() -> None:
        nonlocal run_kind, run_words, after_run
        if not run_words:
            return
        wrapped = _wrap(run_kind, run_words, labels)
        container = open_tags[-1] if open_tags else ""
        if run_kind == "del" and container in ("ol", "ul"):
            wrapped = f'<li class="diff-removed">{wrapped}</li>'
        elif run_kind == "del" and container in ("", "div", "blockquote"):
            wrapped = f"<p>{wrapped}</p>"
        # A removed run and the added one after it read as two, with a space between.
        out.append((" " if (run_space or after_run) and out else "") + wrapped)
        run_kind, run_words = "", []
        after_run = True

    for kind, (what, text, space) in ops:
        if what == "word" and kind:
            if kind != run_kind:
                flush()
                run_kind, run_space = kind, space
            run_words.append(text)
            continue
        if kind == "del":
            continue  # a tag of the old text only: its words are kept, the tag is not
        if what == "word" or not (kind == "ins" and run_kind == "del"):
            flush()
            after_run = False
        if what == "tag":
            name = _TAG_NAME.match(text)
            if name and name[1].lower() not in _VOID:
                if text.startswith("</"):
                    if run_kind:
                        flush()
                    if open_tags:
                        open_tags.pop()
                else:
                    open_tags.append(name[1].lower())
            name_of = name[1].lower() if name else ""
            if name_of in _BLOCK_TAGS and not text.startswith("</"):
                out.append("\n" + text)
            else:
                out.append((" " if space else "") + text)
        else:
            out.append((" " if space else "") + text)
    flush()
    return "".join(out).strip()


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
