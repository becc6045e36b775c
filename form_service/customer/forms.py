"""The rights-request form: fields, limits and validation, in the customer's language.

The hidden tokens (CSRF, form token) are checked outside the form, in
security.py and views.py: WTForms only sees what the customer typed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.datastructures import ImmutableMultiDict
from wtforms import Form, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation, ValidationError

from form_service.addresses import AddressError, normalise
from form_service.text import ONE_LINE_FORBIDDEN, plain_text
from form_service.web.i18n import Translations, texts_of
from site_config.facts import Site

# Longest accepted value of each field, in characters. RFC 5321 §4.5.3.1.3
# limits a forward-path to 256 octets including the angle brackets: 254 for
# the address itself.
MAX_LENGTH = {
    "name": 200,
    "email": 254,
    "phone": 40,
    "order_number": 40,
    "details": 5000,
}

# A field no human fills: it is visually hidden, labelled "leave this empty",
# and skipped by the keyboard. Bots that fill every input reveal themselves.
# "subject" because browsers' autofill has no such field and never fills it for
# a real customer (it does fill "website", "url" or "address").
HONEYPOT = "subject"

# Single-line fields end up in e-mail headers and tickets: CR/LF there would let
# a value add headers, and any control character is a sign of a tampered form
# (text.py: C0 and C1 controls, U+2028/U+2029, and the bidi controls that make
# a ticket read differently from what it says).
_CONTROL = ONE_LINE_FORBIDDEN
# In free text, tabs and line ends are fine; NUL and other C0 controls are
# refused (NUL cannot even be stored in a PostgreSQL text column). C1, bidi
# and Unicode line separators are neutralised instead (text.plain_text).
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,}$")


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def _has_surrogates(value: str) -> bool:
    return any(unicodedata.category(ch) == "Cs" for ch in value)


def _single_line(message: str) -> Callable[[Form, Any], None]:
    def check(form: Form, field: Any) -> None:
        if field.data and (_CONTROL.search(field.data) or _has_surrogates(field.data)):
            raise StopValidation(message)

    return check


def _details_required(no_reason_needed: frozenset[str], message: str
                      ) -> Callable[[Form, Any], None]:
    """Details are required, except for rights that need no reason: withdrawing consent
    must be as easy as giving it (GDPR Art. 7(3)), and an objection to direct
    marketing needs no justification (Art. 21(3))."""

    def check(form: Form, field: Any) -> None:
        if field.data and field.data.strip():
            return
        if form.request_type.data in no_reason_needed:
            # Not sent at all: empty. Otherwise stored as sent, even if only whitespace,
            # but without the controls Python counts as whitespace (U+001C-U+001F,
            # U+0085), which the other checks never see on this path.
            field.data = plain_text(field.data or "")
            raise StopValidation()
        raise StopValidation(message)

    return check


def _free_text(message: str) -> Callable[[Form, Any], None]:
    def check(form: Form, field: Any) -> None:
        if field.data and (_CONTROL_IN_TEXT.search(field.data) or _has_surrogates(field.data)):
            raise StopValidation(message)
        if field.data:
            field.data = plain_text(field.data)

    return check


def _deliverable(smtputf8: bool, format_message: str, smtputf8_message: str
                 ) -> Callable[[Form, Any], None]:
    """Only an address our mail can reach (addresses.py); the field keeps its normal form."""

    def check(form: Form, field: Any) -> None:
        if not field.data:
            return
        try:
            field.data = normalise(field.data, smtputf8=smtputf8).stored
        except AddressError as exc:
            raise StopValidation(smtputf8_message if exc.needs_smtputf8 else format_message
                                 ) from None

    return check


def _matches(pattern: re.Pattern[str], message: str) -> Callable[[Form, Any], None]:
    def check(form: Form, field: Any) -> None:
        if field.data and not pattern.match(field.data):
            raise ValidationError(message)

    return check


class _RequiredChoice(RadioField):
    """A radio group whose "nothing chosen" error is ours, and a bad value WTForms' own."""

    def __init__(self, *args: Any, required_message: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.required_message = required_message

    def pre_validate(self, form: Form) -> None:
        if not self.raw_data or not self.raw_data[0]:
            raise StopValidation(self.required_message)
        super().pre_validate(form)


_classes: dict[tuple[Path, str, bool], type[Form]] = {}


def request_form_class(site: Site, lang: str, smtputf8: bool = False) -> type[Form]:
    """The form class of one language (labels and messages are fixed per class).

    `smtputf8`: the mail path delivers to addresses with non-ASCII letters
    before the @ (POLICY_SMTPUTF8).
    """
    key = (site.root, lang, smtputf8)
    if key not in _classes:
        _classes[key] = _build_form_class(site, lang, smtputf8)
    return _classes[key]


def _build_form_class(site: Site, lang: str, smtputf8: bool) -> type[Form]:
    t = texts_of(site, lang)
    translations = Translations(site, lang)
    one_line = t["form_error_control_characters"]

    class RequestForm(Form):
        class Meta:
            def get_translations(self, form: Form) -> Translations:
                return translations

        name = StringField(
            t["form_name_label"],
            filters=[_strip],
            validators=[
                DataRequired(t["form_error_name_required"]),
                _single_line(one_line),
                Length(max=MAX_LENGTH["name"]),
            ],
        )
        email = StringField(
            t["form_email_label"],
            filters=[_strip],
            validators=[
                DataRequired(t["form_error_email_required"]),
                _single_line(one_line),
                Length(max=MAX_LENGTH["email"]),
                _deliverable(smtputf8, t["form_error_email_format"],
                             t["form_error_email_smtputf8"]),
            ],
        )
        request_type = _RequiredChoice(
            t["form_request_type_label"],
            choices=[SelectChoice(right.id, right.label[lang]) for right in site.rights],
            required_message=t["form_error_request_type_required"],
        )
        details = TextAreaField(
            t["form_details_label"],
            validators=[
                _details_required(
                    frozenset(r.id for r in site.rights if not r.needs_details),
                    t["form_error_details_required"],
                ),
                _free_text(t["form_error_control_characters_text"]),
                Length(max=MAX_LENGTH["details"]),
            ],
        )
        phone = StringField(
            t["form_phone_label"],
            filters=[_strip],
            validators=[
                Optional(),
                _single_line(one_line),
                Length(max=MAX_LENGTH["phone"]),
                _matches(_PHONE, t["form_error_phone_format"]),
            ],
        )
        order_number = StringField(
            t["form_order_number_label"],
            filters=[_strip],
            validators=[Optional(), _single_line(one_line), Length(max=MAX_LENGTH["order_number"])],
        )
        subject = StringField(t["form_honeypot_label"])

    RequestForm.__name__ = f"RequestForm_{lang}"
    return RequestForm


def make_form(site: Site, lang: str, formdata: ImmutableMultiDict[str, Any] | None = None,
              data: Mapping[str, Any] | None = None, *, smtputf8: bool = False) -> Form:
    return request_form_class(site, lang, smtputf8)(formdata=formdata, data=data)


def first_errors(form: Form) -> list[tuple[str, str]]:
    """(field name, its first message) in field order, for the error summary."""
    return [(field.name, field.errors[0]) for field in form if field.errors]
