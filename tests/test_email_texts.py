"""The customer e-mails read as a careful person writes a letter, in every language."""

from __future__ import annotations

import re

import pytest
from site_tree import LANGUAGES, ROOT

from site_config.facts import load_ui_texts

CUSTOMER_BODIES = ("email_verify_body", "email_ack_body", "email_extend_body",
                   "email_close_done_body", "email_close_refused_body")


def _paragraphs(body: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("key", CUSTOMER_BODIES)
def test_the_sentence_after_the_greeting_starts_with_a_capital(lang: str, key: str) -> None:
    """After the greeting line the first sentence begins with a capital letter (the verify
    e-mail's first paragraph is its intro text, which must begin with one too)."""
    texts = load_ui_texts(ROOT, lang)
    greeting, first = _paragraphs(texts[key])[:2]
    assert greeting.endswith(("!", ",")), greeting
    if first == "{intro}":
        for intro in ("email_verify_intro_one", "email_verify_intro_many"):
            assert texts[intro][0].isupper(), texts[intro]
    else:
        assert first[0].isupper(), first


@pytest.mark.parametrize("key", CUSTOMER_BODIES)
def test_english_letters_greet_as_letters_do(key: str) -> None:
    """English e-mails open with "Dear <name>," where they name the customer, and with
    "Hello," in the verification e-mail, which quotes nothing the sender typed."""
    greeting = _paragraphs(load_ui_texts(ROOT, "en")[key])[0]
    assert greeting == ("Hello," if key == "email_verify_body" else "Dear {name},")
