"""Request references: random, unambiguous to read aloud, and forgiving when typed."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from form_service.references import ALPHABET, new_reference, normalise_reference

SHAPE = re.compile(r"PO-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")


def test_shape_and_alphabet() -> None:
    """A reference is PO-XXXX-XXXX in Crockford's base32, which has no I, L, O or U."""
    assert set(ALPHABET).isdisjoint("ILOU") and len(set(ALPHABET)) == 32
    for _ in range(1000):
        assert SHAPE.fullmatch(new_reference())


def test_references_are_random() -> None:
    """10,000 references are all different and use every symbol about equally often."""
    references = [new_reference() for _ in range(10_000)]
    assert len(set(references)) == len(references)
    counts = Counter("".join(r[3:].replace("-", "") for r in references))
    assert set(counts) == set(ALPHABET)
    assert min(counts.values()) > 2500 * 0.8 and max(counts.values()) < 2500 * 1.2


@given(
    st.sampled_from(["", "PO", "po", "P0", "PO-", "po "]),
    st.text(alphabet=ALPHABET, min_size=8, max_size=8),
    st.sampled_from(["-", " ", "", "  "]),
    st.booleans(),
)
def test_typed_references_normalise(prefix: str, body: str, sep: str, lower: bool) -> None:
    """Case, spaces, dashes, a missing prefix and O/I/L for 0/1/1 are all forgiven."""
    canonical = f"PO-{body[:4]}-{body[4:]}"
    typed = f"{prefix}{body[:4]}{sep}{body[4:]}".replace("0", "O").replace("1", "l")
    assert normalise_reference(typed.lower() if lower else typed) == canonical


@pytest.mark.parametrize(
    "text", ["", "PO-7K3M-9QX", "PO-7K3M-9QXDD", "PO-7K3M-9QXU", "PO-7K3M-9Q*D", "XX7K3M9QXD"]
)
def test_what_cannot_be_a_reference(text: str) -> None:
    """Wrong length, a U or punctuation inside, or another prefix is not a reference."""
    assert normalise_reference(text) is None
