"""Request references such as PO-7K3M-9QXD: unguessable, and easy to read aloud.

Crockford's base32 alphabet leaves out I, L, O and U, so no two symbols look
or sound alike; 8 symbols drawn with `secrets` give 40 random bits. Staff and
customers may type a reference in any case, with spaces, with O for 0 or
I/L for 1: `normalise_reference` maps all of these back.
"""

from __future__ import annotations

import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
PREFIX = "PO"
_LENGTH = 8
# Crockford's decoding rules: letters that are easily mistaken for digits.
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def new_reference() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(_LENGTH))
    return f"{PREFIX}-{body[:4]}-{body[4:]}"


def normalise_reference(text: str) -> str | None:
    """The canonical form of a typed reference, or None when it cannot be one."""
    compact = "".join(ch for ch in text.upper() if ch not in " -_.\t\r\n")
    if len(compact) == _LENGTH + len(PREFIX) and compact[:2] in ("PO", "P0"):
        compact = compact[2:]
    if len(compact) != _LENGTH:
        return None
    body = compact.translate(_CONFUSABLE)
    if any(ch not in ALPHABET for ch in body):
        return None
    return f"{PREFIX}-{body[:4]}-{body[4:]}"
