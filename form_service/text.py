"""Customer text made safe to show: no controls that change how other text reads.

Bidirectional controls (U+202A-U+202E, U+2066-U+2069) reorder what follows
them, so a ticket could display a different reference, amount or address from
the one its bytes hold ("Trojan Source", CVE-2021-42574); C1 controls
(U+0080-U+009F) are terminal escapes in some consoles (U+009B is CSI); U+2028
and U+2029 are line breaks to Python's splitlines() and to JavaScript, which
would let one-line values add lines to the CLI's output or a header.

One-line fields (name, e-mail, phone, order number) refuse them (forms.py);
free text keeps its meaning with them neutralised; and every place that
shows stored text (e-mail, webhook, CLI, export) neutralises again, so rows
stored before these rules are safe too.
"""

from __future__ import annotations

import re

_BIDI = "\u202a-\u202e\u2066-\u2069"
_SEPARATORS = "\u2028\u2029"
_C1 = "\x80-\x9f"
# Everything a one-line field may not hold: C0 (tab and line ends included), DEL, C1,
# the Unicode line separators and the bidi controls.
ONE_LINE_FORBIDDEN = re.compile(f"[\x00-\x1f\x7f{_C1}{_SEPARATORS}{_BIDI}]")
_INVISIBLE = re.compile(f"[{_C1}{_BIDI}\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SEPARATOR = re.compile(f"[{_SEPARATORS}]")


def plain_text(text: str) -> str:
    """Multi-line text without any control that could reorder or hide text.

    U+2028/U+2029 become "\\n"; CR and LF are kept as sent (a browser sends CRLF).
    """
    return _INVISIBLE.sub("", _SEPARATOR.sub("\n", text))


def one_line(text: str) -> str:
    """A one-line value for display: every control, separator and line end becomes a space."""
    return " ".join(ONE_LINE_FORBIDDEN.sub(" ", text).split())
