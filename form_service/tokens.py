"""Signed, expiring tokens (itsdangerous): the form token and the verification link.

The purpose is the signer's salt, so a token made for one use is refused for
another (a form token can never verify an e-mail address).
"""

from __future__ import annotations

import functools
from typing import Any

from itsdangerous import BadData, BadSignature, SignatureExpired, URLSafeTimedSerializer
from itsdangerous.encoding import base64_decode, base64_encode


class TokenError(Exception):
    """Raised when a token is forged, tampered with or made for another purpose."""


class TokenExpired(TokenError):
    """Raised when a genuine token is older than it may be."""


@functools.lru_cache(maxsize=32)
def _serializer(secret: str, purpose: str) -> URLSafeTimedSerializer:
    # Made once per key and purpose: building one costs more than a token (every
    # submission reads two and makes one; bench/form_load.py).
    return URLSafeTimedSerializer(secret, salt=purpose)


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    return _serializer(secret, purpose).dumps(payload)


def _is_canonical(token: str) -> bool:
    """True when the signature is spelt the one way its bytes encode.

    Unpadded base64 of a 20-byte HMAC leaves two spare bits in the last
    character, so up to four spellings decode to the same signature. Only the
    spelling we issued is accepted, so a token has exactly one valid form.
    """
    _, _, signature = token.rpartition(".")
    try:
        return base64_encode(base64_decode(signature)).decode("ascii") == signature
    except (BadData, UnicodeError, ValueError):
        return False


def read_token(secret: str, purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
    if not _is_canonical(token):
        raise TokenError(purpose)
    serializer = _serializer(secret, purpose)
    try:
        payload = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise TokenExpired(purpose) from None
    except (BadSignature, UnicodeError, ValueError):
        raise TokenError(purpose) from None
    if not isinstance(payload, dict):
        raise TokenError(purpose)
    return payload
