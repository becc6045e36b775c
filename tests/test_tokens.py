"""Signed tokens: purpose-bound, expiring, and with one valid spelling."""

from __future__ import annotations

import string

import pytest

from form_service.tokens import TokenError, TokenExpired, make_token, read_token

SECRET = "test-secret"  # noqa: S105 (a test key)
B64 = string.ascii_letters + string.digits + "-_"


def test_genuine_token_reads_back() -> None:
    token = make_token(SECRET, "form", {"sid": "abc"})
    assert read_token(SECRET, "form", token, 60) == {"sid": "abc"}


def test_token_for_another_purpose_is_refused() -> None:
    token = make_token(SECRET, "form", {"sid": "abc"})
    with pytest.raises(TokenError):
        read_token(SECRET, "verify", token, 60)


def test_token_from_another_key_is_refused() -> None:
    token = make_token("another-key", "form", {"sid": "abc"})
    with pytest.raises(TokenError):
        read_token(SECRET, "form", token, 60)


def test_old_token_is_expired() -> None:
    token = make_token(SECRET, "form", {"sid": "abc"})
    with pytest.raises(TokenExpired):
        read_token(SECRET, "form", token, -1)


@pytest.mark.parametrize("position", [-1, -5, 3])
def test_every_other_spelling_of_a_token_is_refused(position: int) -> None:
    """Changing any one character is refused, even where base64 has spare bits.

    The last character of the signature carries two unused bits, so without
    the canonical check some of these spellings decoded to the same signature
    and were accepted.
    """
    token = make_token(SECRET, "form", {"sid": "abc"})
    index = position % len(token)
    refused = 0
    for replacement in B64:
        if replacement == token[index]:
            continue
        spoilt = token[:index] + replacement + token[index + 1:]
        with pytest.raises(TokenError):
            read_token(SECRET, "form", spoilt, 60)
        refused += 1
    assert refused == len(B64) - 1


@pytest.mark.parametrize("garbage", ["", ".", "a.b.c", "x" * 5, "é.ü", "abc.def.ghijk", "..=="])
def test_garbage_is_a_token_error_not_a_crash(garbage: str) -> None:
    with pytest.raises(TokenError):
        read_token(SECRET, "form", garbage, 60)
