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

from starlette.datastructures import FormData, ImmutableMultiDict
from wtforms import Form, RadioField, SelectChoice, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, StopValidation, ValidationError

from form_service.i18n import Translations, texts_of
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
# a value add headers, and any control character is a sign of a tampered form.
# U+2028/U+2029 count too: Python's str.splitlines() breaks lines at them.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# In free text, tabs and line ends are fine; other control characters are not
# (NUL cannot even be stored in a PostgreSQL text column).
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Deliberately loose: the verification e-mail is the real check (GDPR Art. 12(6)).
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
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
            if field.data is None:  # the field was not sent at all
                field.data = ""
            raise StopValidation()  # otherwise stored as sent, even if only whitespace
        raise StopValidation(message)

    return check


def _free_text(message: str) -> Callable[[Form, Any], None]:
    def check(form: Form, field: Any) -> None:
        if field.data and (_CONTROL_IN_TEXT.search(field.data) or _has_surrogates(field.data)):
            raise StopValidation(message)

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


_classes: dict[tuple[Path, str], type[Form]] = {}


def request_form_class(site: Site, lang: str) -> type[Form]:
    """The form class of one language (labels and messages are fixed per class)."""
    key = (site.root, lang)
    if key not in _classes:
        _classes[key] = _build_form_class(site, lang)
    return _classes[key]


def _build_form_class(site: Site, lang: str) -> type[Form]:
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
                _matches(_EMAIL, t["form_error_email_format"]),
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


def text_fields(formdata: FormData) -> ImmutableMultiDict[str, str]:
    """Only the text values of a submitted form: an uploaded file is no answer to a text field."""
    return ImmutableMultiDict([(k, v) for k, v in formdata.multi_items() if isinstance(v, str)])


def make_form(site: Site, lang: str, formdata: ImmutableMultiDict[str, Any] | None = None,
              data: Mapping[str, Any] | None = None) -> Form:
    return request_form_class(site, lang)(formdata=formdata, data=data)


def first_errors(form: Form) -> list[tuple[str, str]]:
    """(field name, its first message) in field order, for the error summary."""
    return [(field.name, field.errors[0]) for field in form if field.errors]
