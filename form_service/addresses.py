"""E-mail addresses: only those our mail can reach, in one normal form.

The maintained `email-validator` package decides the syntax (RFC 5321/5322
as mail servers apply them, not the wider grammar that lets `a(b)@x` or
`a<b>@x` through). One normal form is stored, and the same one counts for the
per-mailbox cap, so `Anna@Example.LV` and `anna@example.lv` are one mailbox.

An internationalised domain (`pulksteņi.lv`) is fine everywhere: it is sent as
punycode (IDNA). An internationalised local part (`jānis@…`) needs SMTPUTF8
(RFC 6531) at every hop; it is accepted only when POLICY_SMTPUTF8 says the
mail path has it, so that no request is stored whose e-mail can never leave.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email


class AddressError(ValueError):
    """Raised for an address mail cannot reach; `needs_smtputf8` when only its letters stop it."""

    def __init__(self, reason: str, *, needs_smtputf8: bool = False) -> None:
        super().__init__(reason)
        self.needs_smtputf8 = needs_smtputf8


@dataclass(frozen=True)
class Mailbox:
    stored: str  # what is kept and shown: the normal form, domain in its Unicode spelling
    envelope: str  # what SMTP is given: the domain in punycode


def normalise(text: str, *, smtputf8: bool) -> Mailbox:
    """The address in its normal form; AddressError if mail could not reach it."""
    try:
        found = validate_email(text, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise AddressError(str(exc)) from None
    if found.smtputf8:
        if not smtputf8:
            raise AddressError("the part before @ needs SMTPUTF8", needs_smtputf8=True)
        return Mailbox(found.normalized, found.normalized)
    assert found.ascii_email is not None  # set whenever SMTPUTF8 is not needed
    return Mailbox(found.normalized, found.ascii_email)


def envelope_address(stored: str) -> str:
    """The address to give SMTP for a stored one (IDN domain as punycode)."""
    return normalise(stored, smtputf8=True).envelope


def mailbox_key(stored: str) -> str:
    """The digest that identifies a mailbox for the cap on verification e-mails.

    Case is ignored (providers treat local parts case-insensitively, whatever
    RFC 5321 allows) and a "+tag" is dropped: name+x@ and name+y@ reach the
    same inbox, so they share one cap. A digest, so the count is no second
    copy of the address.
    """
    local, _, domain = envelope_address(stored).rpartition("@")
    local = local.split("+", 1)[0].lower()
    return hashlib.sha256(f"{local}@{domain.lower()}".encode()).hexdigest()
