"""The form's fields, limits and messages in each language, WTForms' own included."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import wtforms
from site_tree import LANGUAGES, ROOT
from starlette.datastructures import ImmutableMultiDict as MultiDict

from form_service.customer.forms import MAX_LENGTH, first_errors, make_form
from form_service.web.i18n import WTFORMS_TABLE, Translations, plural_category, texts_of
from site_config.facts import load_site

SITE = load_site(ROOT)
VALID = {
    "name": "Jānis Ozoliņš",
    "email": "janis@example.lv",
    "request_type": "erasure",
    "details": "Lūdzu, izdzēsiet manu kontu.\r\nPaldies!",
    "phone": "",
    "order_number": "",
}


def _form(lang: str = "lv", **overrides: str) -> wtforms.Form:
    return make_form(SITE, lang, formdata=MultiDict({**VALID, **overrides}))


def _pot_msgids() -> set[str]:
    """Every message WTForms can show, from the template catalogue it ships."""
    pot = Path(wtforms.__file__).parent / "locale" / "wtforms.pot"
    return set(re.findall(r'^msgid "(.+)"$', pot.read_text(encoding="utf-8"), re.M))


def test_valid_form_passes() -> None:
    """A complete, ordinary submission validates, with surrounding spaces stripped."""
    form = _form(name="  Jānis Ozoliņš ", email=" janis@example.lv ")
    assert form.validate(), form.errors
    assert form.name.data == "Jānis Ozoliņš" and form.email.data == "janis@example.lv"
    assert form.details.data == VALID["details"]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalogue_translates_every_wtforms_message(lang: str) -> None:
    """Each msgid in WTForms' catalogue has a text in form.<lang>.yml (WTForms ships no Latvian)."""
    table = texts_of(SITE, lang)[WTFORMS_TABLE]
    assert _pot_msgids() - set(table) == set()


def test_wtforms_messages_are_latvian() -> None:
    """WTForms' own length and choice messages come out in Latvian on the Latvian form."""
    form = _form(name="x" * (MAX_LENGTH["name"] + 1), request_type="everything")
    assert not form.validate()
    assert form.name.errors == ["Laukā nedrīkst būt vairāk par 200 rakstzīmēm."]
    assert form.request_type.errors == ["Nederīga izvēle."]


def test_wtforms_messages_are_english_on_the_english_form() -> None:
    """The same messages on the English form are WTForms' English."""
    form = _form("en", name="x" * 201, request_type="everything")
    assert not form.validate()
    assert form.name.errors == ["Field cannot be longer than 200 characters."]
    assert form.request_type.errors == ["Not a valid choice."]


@pytest.mark.parametrize(
    ("n", "category"),
    [(1, "one"), (21, "one"), (101, "one"), (11, "zero"), (2, "other"), (0, "zero"),
     (111, "zero"), (200, "zero"), (22, "other")],
)
def test_latvian_plural_rule(n: int, category: str) -> None:
    """Latvian takes the singular after numbers ending in 1 except 11, and CLDR's "zero"
    after 0, 10-20, 30, ... (CLDR, from babel)."""
    assert plural_category("lv", n) == category


@pytest.mark.parametrize(
    ("n", "category"),
    [(1, "one"), (21, "one"), (2, "few"), (24, "few"), (5, "many"), (11, "many"),
     (12, "many"), (0, "many"), (111, "many"), (101, "one")],
)
def test_russian_plural_rule(n: int, category: str) -> None:
    """Russian: 1 символ, 2 символа, 5 символов; 11-14 take "many" (CLDR, from babel)."""
    assert plural_category("ru", n) == category


def test_russian_wtforms_messages_agree_with_the_number() -> None:
    """ngettext picks the Russian form each number needs: 1, 21 символ; 3 символа; 200 символов."""
    translations = Translations(SITE, "ru")
    msgid = "Field must be exactly %(max)d character long."
    plural = "Field must be exactly %(max)d characters long."
    said = {n: translations.ngettext(msgid, plural, n) % {"max": n} for n in (1, 21, 3, 200)}
    assert said == {1: "В поле должен быть ровно 1 символ.",
                    21: "В поле должен быть ровно 21 символ.",
                    3: "В поле должно быть ровно 3 символа.",
                    200: "В поле должно быть ровно 200 символов."}


def test_wtforms_messages_are_russian_on_the_russian_form() -> None:
    """WTForms' own length and choice messages come out in Russian on the Russian form."""
    form = _form("ru", name="x" * (MAX_LENGTH["name"] + 1), request_type="everything")
    assert not form.validate()
    assert form.name.errors == ["В поле не может быть больше 200 символов."]
    assert form.request_type.errors == ["Недопустимый вариант."]


def test_latvian_singular_message() -> None:
    """ngettext picks the Latvian singular for 21 and the plural for 40."""
    translations = Translations(SITE, "lv")
    msgid = "Field cannot be longer than %(max)d character."
    plural = "Field cannot be longer than %(max)d characters."
    assert translations.ngettext(msgid, plural, 21) % {"max": 21} == (
        "Laukā nedrīkst būt vairāk par 21 rakstzīmi.")
    assert translations.ngettext(msgid, plural, 40) % {"max": 40} == (
        "Laukā nedrīkst būt vairāk par 40 rakstzīmēm.")


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("name", "Ierakstiet savu vārdu un uzvārdu"),
        ("email", "Ierakstiet savu e-pasta adresi"),
        ("request_type", "Izvēlieties, ko vēlaties, lai mēs darām"),
        ("details", "Aprakstiet savu pieprasījumu"),
    ],
)
def test_required_fields_say_what_to_do(field: str, message: str) -> None:
    """An empty required field gets one specific message, not WTForms' generic one."""
    form = _form(**{field: "   " if field != "request_type" else ""})
    assert not form.validate()
    assert getattr(form, field).errors == [message]


def test_optional_fields_may_be_empty() -> None:
    """Phone and order number are optional."""
    assert _form(phone="", order_number="").validate()


def _filler(field: str, length: int) -> str:
    """A valid value of the field, `length` characters long."""
    if field == "email":
        return "a" * (length - 11) + "@example.lv"
    return ("1" if field == "phone" else "ā") * length


@pytest.mark.parametrize(("field", "limit"), sorted(MAX_LENGTH.items()))
def test_length_limit_of_every_field(field: str, limit: int) -> None:
    """Each field accepts exactly its limit and refuses one character more."""
    assert _form(**{field: _filler(field, limit)}).validate()
    too_long = _form(**{field: _filler(field, limit + 1)})
    assert not too_long.validate()
    assert getattr(too_long, field).errors


@pytest.mark.parametrize("field", ["name", "email", "phone", "order_number"])
@pytest.mark.parametrize("bad", ["\r", "\n", "\x00", "\x1b", "\u0085", "\u2028"])
def test_control_characters_in_single_line_fields(field: str, bad: str) -> None:
    """CR, LF, NUL and other control characters in a one-line field are refused clearly."""
    value = {"email": f"janis{bad}@example.lv", "phone": f"2000{bad}0000"}.get(field, f"A{bad}B")
    form = _form(**{field: value})
    assert not form.validate()
    assert getattr(form, field).errors == [
        "Rakstiet vienā rindā, bez īpašām vadības rakstzīmēm"]


def test_details_allow_line_breaks_but_not_nul() -> None:
    """Free text keeps its line breaks and tabs; NUL (unstorable in PostgreSQL) is refused."""
    assert _form(details="a\r\nb\tc").validate()
    form = _form(details="a\x00b")
    assert not form.validate()
    assert form.details.errors == ["Izņemiet no teksta īpašās vadības rakstzīmes"]


@pytest.mark.parametrize("email", ["janis", "janis@", "@example.lv", "janis@example",
                                   "jan is@example.lv", "a@b@example.lv"])
def test_malformed_email_is_refused(email: str) -> None:
    """An address that cannot be one gets the "correct format" message."""
    form = _form("en", email=email)
    assert not form.validate()
    assert form.email.errors == [
        "Enter an e-mail address in the correct format, like name@example.com"]


@pytest.mark.parametrize(("phone", "ok"), [("+371 2000 0000", True), ("(371) 20-00-00", True),
                                           ("call me", False), ("+", False)])
def test_phone_format(phone: str, ok: bool) -> None:
    """A phone number is digits, spaces and + ( ) . / -."""
    assert _form(phone=phone).validate() is ok


def test_first_errors_follow_field_order() -> None:
    """The error summary lists fields in the order they appear on the page."""
    form = _form("en", name="", email="", details="")
    form.validate()
    assert [name for name, _ in first_errors(form)] == ["name", "email", "details"]


@pytest.mark.parametrize("email", ["a<b>@example.lv", "a,b@example.lv", "a;b@example.lv",
                                   "a(b)@example.lv", "a..b@example.lv", ".a@example.lv",
                                   "a@-example.lv", '"a b"@example.lv', "a@[192.0.2.1]"])
def test_addresses_mail_cannot_reach_are_refused(email: str) -> None:
    """What RFC 5322's grammar allows but no mailer would deliver (quotes, comments,
    delimiters, double dots, literals) gets the "correct format" message, not a stored
    request whose e-mail fails forever."""
    form = _form("en", email=email)
    assert not form.validate()
    assert form.email.errors == [
        "Enter an e-mail address in the correct format, like name@example.com"]


def test_address_is_stored_in_its_normal_form() -> None:
    """The domain is lower-cased (the local part is the mailbox's own), and an IDN
    domain is kept readable: it is turned into punycode only for sending."""
    form = _form(email="Janis@Example.LV")
    assert form.validate() and form.email.data == "Janis@example.lv"
    form = _form(email="anna@PULKSTEŅI.lv")
    assert form.validate() and form.email.data == "anna@pulksteņi.lv"


@pytest.mark.parametrize(("smtputf8", "lang", "message"), [
    (False, "en", "Our e-mail cannot reach an address with letters such as ā or š"),
    (False, "lv", "Mūsu e-pasts nevar nosūtīt vēstuli uz adresi"),
    (True, "en", None),
])
def test_non_ascii_local_part_only_where_mail_can_carry_it(
    smtputf8: bool, lang: str, message: str | None
) -> None:
    """jānis@… needs SMTPUTF8 at every hop: refused in the customer's language unless
    POLICY_SMTPUTF8 says the mail path has it."""
    form = make_form(SITE, lang, formdata=MultiDict({**VALID, "email": "jānis@example.lv"}),
                     smtputf8=smtputf8)
    assert form.validate() is (message is None)
    if message:
        assert form.email.errors[0].startswith(message)


@pytest.mark.parametrize("field", ["name", "phone", "order_number"])
@pytest.mark.parametrize("bad", ["\u202e", "\u2066", "\u2069", "\u202a", "\u009b", "\u2029"])
def test_bidi_and_c1_controls_are_refused_in_one_line_fields(field: str, bad: str) -> None:
    """Bidi controls (which reorder how a ticket reads), C1 controls and Unicode line
    separators are refused in one-line fields."""
    value = f"2000{bad}0000" if field == "phone" else f"A{bad}B"
    form = _form(**{field: value})
    assert not form.validate()


def test_bidi_and_c1_controls_are_neutralised_in_details() -> None:
    """In free text they are taken out (line separators become line ends), keeping the words."""
    form = _form(details="Pay \u202eDCBA\u202c to \u009bus\u2028now")
    assert form.validate()
    assert form.details.data == "Pay DCBA to us\nnow"


def test_whitespace_like_controls_are_neutralised_where_no_reason_is_needed() -> None:
    """Python counts U+001C-U+001F and U+0085 as whitespace: details of only those, on a
    request that needs no reason, are kept without them (found by the fuzz test)."""
    form = _form(request_type="unsubscribe", details="\x1f \x85\x1c")
    assert form.validate()
    assert form.details.data == " "
