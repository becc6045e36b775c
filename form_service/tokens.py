"""Signed, expiring tokens (itsdangerous): the form token and the verification link.

The purpose is the signer's salt, so a token made for one use is refused for
another (a form token can never verify an e-mail address).
"""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class TokenError(Exception):
    """Raised when a token is forged, tampered with or made for another purpose."""


class TokenExpired(TokenError):
    """Raised when a genuine token is older than it may be."""


def make_token(secret: str, purpose: str, payload: dict[str, Any]) -> str:
    return URLSafeTimedSerializer(secret, salt=purpose).dumps(payload)


def read_token(secret: str, purpose: str, token: str, max_age_seconds: int) -> dict[str, Any]:
    serializer = URLSafeTimedSerializer(secret, salt=purpose)
    try:
        payload = serializer.loads(token, max_age=max_age_seconds)
    except SignatureExpired:
        raise TokenExpired(purpose) from None
    except (BadSignature, UnicodeError, ValueError):
        raise TokenError(purpose) from None
    if not isinstance(payload, dict):
        raise TokenError(purpose)
    return payload
