"""E-mails and their delivery: texts from the catalogue, safe headers, SMTP and Maildir."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import re
from dataclasses import replace
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from delivery_support import SHA, T0
from site_tree import LANGUAGES, ROOT
from smtp_server import SmtpServer

from form_service.delivery.emails import MessageError, Outgoing, render, ticket_json
from form_service.delivery.mailer import (
    MaildirMailer,
    PermanentFailure,
    ServerUnavailable,
    SmtpMailer,
    TemporaryFailure,
    flatten,
    mailer_for,
    parse_smtp_url,
)
from form_service.records import RequestRecord
from form_service.settings import Settings, SettingsError
from form_service.tokens import read_token

RECORD = RequestRecord(
    id=1, reference="PO-7K3M-9QXD", submission_id="s1", request_type="erasure",
    name="Jānis Bērziņš", email="janis@example.lv", phone="+371 20000000",
    order_number=None, details="Lūdzu, dzēsiet manus datus.\nPaldies!", language="lv",
    policy_version="1.0", policy_sha256=SHA, policy_language="lv",
    policy_viewed_at=T0 - dt.timedelta(minutes=3), submitted_at=T0,
    verified_at=T0 + dt.timedelta(minutes=20), due_at=dt.date(2027, 1, 4), status="verified",
)


def mid(kind: str) -> str:
    return f"<PO-7K3M-9QXD.{kind}@pulkstenu-outlets.lv>"


def body(message: EmailMessage) -> str:
    part = message.get_body()
    assert part is not None and part.get_content_type() == "text/plain"
    return str(part.get_content()).replace("\r\n", "\n")


def parsed(outgoing: Outgoing) -> EmailMessage:
    message = email.message_from_bytes(flatten(outgoing), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


@pytest.mark.parametrize(
    ("lang", "due", "link_hours"),
    [("lv", "4.01.2027.", "72 stundu"), ("en", "4 January 2027", "72 hours"),
     ("ru", "4 января 2027 г.", "72 ч")],
)
def test_verify_email(settings: Settings, lang: str, due: str, link_hours: str) -> None:
    """The "verify" e-mail reaches the customer in their language: reference, due date, link."""
    record = replace(RECORD, language=lang)
    out = render("verify", record, message_id=mid("verify"), settings=settings)
    message = parsed(out)
    assert out.recipients == ("janis@example.lv",) and out.sender == "privacy@pulkstenu-outlets.lv"
    # The bare address, and nothing the sender typed anywhere in the e-mail: whoever fills
    # in the form chooses those words, and they would reach any inbox in our name.
    assert message["To"] == "janis@example.lv"
    assert message["Message-ID"] == mid("verify") and message["Content-Language"] == lang
    assert message["Auto-Submitted"] == "auto-generated"
    assert "PO-7K3M-9QXD" in message["Subject"]
    text = body(message)
    assert "PO-7K3M-9QXD" in text and due in text and link_hours in text
    [token] = re.findall(r"https://privatums\.pulkstenu-outlets\.lv/request/verify/(\S+)", text)
    assert read_token(settings.secret_key, "verify", token, 72 * 3600) == {"ref": RECORD.reference}
    for typed in ("Jānis", "Bērziņš", "Lūdzu, dzēsiet manus datus.", "20000000"):
        assert typed not in text and typed not in str(message["Subject"])


def test_verify_email_gathers_the_address_s_waiting_requests(settings: Settings) -> None:
    """One verification e-mail can carry several requests made with the address, each
    with its own reference, type and link (the cap on verification e-mails)."""
    other = replace(RECORD, reference="PO-2ABC-3DEF", request_type="access")
    out = render("verify", RECORD, message_id=mid("verify"), settings=settings,
                 gathered=[other])
    message = parsed(out)
    assert "(2)" in message["Subject"]
    text = body(message)
    tokens = re.findall(r"/request/verify/(\S+)", text)
    assert [read_token(settings.secret_key, "verify", t, 3600)["ref"] for t in tokens] == [
        RECORD.reference, "PO-2ABC-3DEF"]
    assert "Piekļuve personas datiem" in text and "Datu dzēšana" in text


def test_ticket_email(settings: Settings) -> None:
    """The ticket goes to staff in the staff language, Reply-To the requester, with every fact."""
    record = replace(RECORD, language="en", policy_language="en")
    message = parsed(render("ticket", record, message_id=mid("ticket"), settings=settings))
    assert message["To"] == "Privātuma komanda <privacy-team@pulkstenu-outlets.lv>"
    assert message["Reply-To"] == "Jānis Bērziņš <janis@example.lv>"
    assert message["Subject"] == (
        "PO-7K3M-9QXD: Datu dzēšana (VDAR Art. 17), atbilde līdz 4.01.2027."
    )
    text = body(message)
    for fact in (
        "Jānis Bērziņš", "janis@example.lv", "+371 20000000", "(nav norādīts)",
        "> Lūdzu, dzēsiet manus datus.\n> Paldies!", SHA, "1.0 (en)",
        "https://privatums.pulkstenu-outlets.lv/en/versions/1.0/",
        "2026-12-01T11:27:00+02:00", "2026-12-01T11:30:00+02:00", "2026-12-01T11:50:00+02:00",
        "4.01.2027.",
    ):
        assert fact in text


def test_ack_email(settings: Settings) -> None:
    """The ack tells the customer what they asked, the due date and which policy text they saw."""
    message = parsed(render("ack", RECORD, message_id=mid("ack"), settings=settings))
    assert message["In-Reply-To"] == mid("verify")
    text = body(message)
    for fact in (
        "PO-7K3M-9QXD", "Datu dzēšana", "> Lūdzu, dzēsiet manus datus.", "4.01.2027.",
        "1.0, spēkā no 24.11.2026.", SHA,
        "https://privatums.pulkstenu-outlets.lv/versions/1.0/",
        "1.12.2026. plkst. 11:27 (Rīgas laiks)",
        "https://privatums.pulkstenu-outlets.lv/versions.json",
    ):
        assert fact in text


def test_customer_text_cannot_add_headers(settings: Settings) -> None:
    """A name carrying CR/LF stays inside its header: no Bcc, no second Subject, one recipient;
    only staff see it as a display name (the ticket's Reply-To), the customer's mail has none."""
    evil = replace(RECORD, name="Eve\r\nBcc: victim@example.com\r\nSubject: free\x00 watches")
    for kind in ("verify", "ticket", "ack"):
        out = render(kind, evil, message_id=mid(kind), settings=settings)
        raw = flatten(out)
        assert not re.search(rb"^(Bcc|Subject: free)", raw, re.MULTILINE | re.IGNORECASE)
        assert b"\x00" not in raw
        message = parsed(out)
        assert len(message.get_all("Subject")) == 1 and message["Bcc"] is None
        header = message["Reply-To" if kind == "ticket" else "To"]
        assert [a.addr_spec for a in header.addresses] == ["janis@example.lv"]
        name = header.addresses[0].display_name
        expected = "Eve Bcc: victim@example.com Subject: free watches" if kind == "ticket" else ""
        assert name == expected


@pytest.mark.parametrize("name", ["=?utf-8?q?URGENT=3A_account_locked?=",
                                  "=?utf-8?b?VVJHRU5U?= Smith", "a =?x?q?y?= b"])
def test_a_name_like_an_encoded_word_is_shown_literally(settings: Settings, name: str) -> None:
    """RFC 2047: a display name that looks like an encoded-word is sent so that a mail
    reader shows those characters, not a decoded text the sender chose."""
    out = render("ticket", replace(RECORD, name=name), message_id=mid("ticket"),
                 settings=settings)
    assert parsed(out)["Reply-To"].addresses[0].display_name == name


@pytest.mark.parametrize("address", ["janis@example.lv\r\nBcc: x@y.lv", "a b@example.lv", "x"])
def test_unusable_address_is_refused(settings: Settings, address: str) -> None:
    """An e-mail address with a line break, a space or no @ cannot be rendered at all."""
    with pytest.raises(MessageError):
        render("verify", replace(RECORD, email=address), message_id=mid("verify"),
               settings=settings)


def send_by_smtp(url: str, outgoing: Outgoing) -> None:
    """Hand one message to the SMTP server at `url` over a connection of its own."""

    async def send() -> None:
        mailer = SmtpMailer(url)
        try:
            await mailer.send(outgoing)
        finally:
            await mailer.close()

    asyncio.run(send())


def test_smtp_delivery(settings: Settings, smtp_server: SmtpServer) -> None:
    """SmtpMailer hands the message over with the envelope it was given."""
    out = render("verify", RECORD, message_id=mid("verify"), settings=settings)
    send_by_smtp(smtp_server.url, out)
    [received] = smtp_server.messages
    assert received.sender == "privacy@pulkstenu-outlets.lv"
    assert received.recipients == ("janis@example.lv",)
    assert received.message_id == mid("verify")
    assert "PO-7K3M-9QXD" in body(received.message)


def test_smtp_refusals_are_classified(settings: Settings, smtp_server: SmtpServer) -> None:
    """550 for a recipient is permanent, 451 temporary, and the connection stays usable."""
    smtp_server.reject("gone@example.lv", 550)
    smtp_server.reject("busy@example.lv", 451)

    def to(address: str) -> Outgoing:
        return render("verify", replace(RECORD, email=address), message_id=mid("verify"),
                      settings=settings)

    async def send() -> None:
        mailer = SmtpMailer(smtp_server.url)
        with pytest.raises(PermanentFailure, match="550"):
            await mailer.send(to("gone@example.lv"))
        with pytest.raises(TemporaryFailure, match="451") as temporary:
            await mailer.send(to("busy@example.lv"))
        assert not isinstance(temporary.value, ServerUnavailable)
        await mailer.send(to("janis@example.lv"))
        await mailer.close()

    asyncio.run(send())
    assert [m.recipients for m in smtp_server.messages] == [("janis@example.lv",)]


def test_server_down_is_temporary(settings: Settings, smtp_server: SmtpServer) -> None:
    """A server refusing connections is ServerUnavailable: retry later, never give up at once."""
    smtp_server.stop()
    out = render("verify", RECORD, message_id=mid("verify"), settings=settings)

    async def send() -> None:
        mailer = SmtpMailer(smtp_server.url, timeout=2)
        with pytest.raises(ServerUnavailable, match=str(smtp_server.port)):
            await mailer.send(out)
        await mailer.close()

    asyncio.run(send())


def test_maildir_delivery(settings: Settings) -> None:
    """Without an SMTP server, messages land in the Maildir, complete and with their envelope."""
    mailer = mailer_for(settings)
    assert isinstance(mailer, MaildirMailer)
    asyncio.run(mailer.send(render("ack", RECORD, message_id=mid("ack"), settings=settings)))
    [path] = (settings.maildir / "new").iterdir()
    message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Delivered-To"] == "janis@example.lv"
    assert message["Message-ID"] == mid("ack")
    assert "PO-7K3M-9QXD" in body(message)  # type: ignore[arg-type]


def test_mailer_for_smtp(settings: Settings) -> None:
    """With POLICY_SMTP_URL set, mail goes over SMTP."""
    assert isinstance(mailer_for(replace(settings, smtp_url="smtp://127.0.0.1:2525")), SmtpMailer)


def test_smtp_urls() -> None:
    """smtp:// and smtps:// URLs give host, port (25/465 by default), TLS and credentials."""
    config = parse_smtp_url("smtps://shop%40example.lv:p%3Ass@mail.example.lv")
    assert (config.host, config.port, config.use_tls) == ("mail.example.lv", 465, True)
    assert (config.username, config.password) == ("shop@example.lv", "p:ss")
    plain = parse_smtp_url("smtp://127.0.0.1:2525")
    assert (plain.port, plain.use_tls, plain.username) == (2525, False, None)
    with pytest.raises(SettingsError, match="POLICY_SMTP_URL"):
        parse_smtp_url("http://mail.example.lv")


def test_email_texts_have_the_same_keys_in_each_language() -> None:
    """email.<lang>.yml of every language defines the same email_* texts."""
    folder = ROOT / "site_config" / "texts"
    keys = [set(yaml.safe_load((folder / f"email.{lang}.yml").read_text("utf-8")))
            for lang in LANGUAGES]
    assert all(each == keys[0] for each in keys)
    assert all(key.startswith("email_") for key in keys[0])


EXTEND = {"months": 1, "extended_months": 1, "reason": "We must search the archive.",
          "previous_due_at": "2027-01-04", "due_at": "2027-02-01"}
CLOSE = {"outcome": "refused", "reason": "No account matches your address.",
         "closed_at": "2027-01-03T10:00:00+00:00", "due_at": "2027-01-04", "late": False}


@pytest.mark.parametrize(
    ("lang", "subject", "facts"),
    [
        ("lv", "Jūsu pieprasījums PO-7K3M-9QXD: atbildes termiņš pagarināts līdz 1.02.2027.",
         ["Iepriekšējais termiņš:   4.01.2027.", "Jaunais termiņš:         1.02.2027.",
          "12. panta 3. punkts"]),
        ("en", "Your request PO-7K3M-9QXD: we will answer by 1 February 2027",
         ["Answer was due:  4 January 2027", "Answer now due:  1 February 2027",
          "GDPR Art. 12(3)"]),
        ("ru", "Ваш запрос PO-7K3M-9QXD: мы ответим до 1 февраля 2027 г.",
         ["Прежний срок:      4 января 2027 г.", "Новый срок:        1 февраля 2027 г.",
          "статья 12(3) GDPR"]),
    ],
)
def test_extend_email(settings: Settings, lang: str, subject: str, facts: list[str]) -> None:
    """The "extend" e-mail gives the customer, in their language, the new date and the reason."""
    record = replace(RECORD, language=lang)
    out = render("extend", record, message_id=mid("extend"), settings=settings, payload=EXTEND)
    message = parsed(out)
    assert out.recipients == ("janis@example.lv",)
    assert message["Subject"] == subject and message["Content-Language"] == lang
    assert message["In-Reply-To"] == mid("verify")
    assert message["Reply-To"] == "Pulksteņu Outlets <info@pulkstenu-outlets.lv>"
    text = body(message)
    for fact in (*facts, "PO-7K3M-9QXD", "  We must search the archive."):
        assert fact in text, fact


@pytest.mark.parametrize(
    ("lang", "outcome", "subject", "facts"),
    [
        ("lv", "refused", "Atbilde uz jūsu pieprasījumu PO-7K3M-9QXD: to neizpildīsim",
         ["Datu valsts inspekcija", "VDAR 77. pants", "VDAR 79. pants", "Atbildēts:           "
          "3.01.2027.", "Saņemts:             1.12.2026. plkst. 11:30 (Rīgas laiks)"]),
        ("en", "refused", "Answer to your request PO-7K3M-9QXD: we will not act on it",
         ["Data State Inspectorate (Datu valsts inspekcija)", "GDPR Art. 77",
          "effective judicial remedy", "Answered:     3 January 2027",
          "Received:     1 December 2026, 11:30 Riga time"]),
        ("lv", "done", "Jūsu pieprasījums PO-7K3M-9QXD ir izpildīts", ["Ko mēs izdarījām:"]),
        ("en", "done", "Your request PO-7K3M-9QXD has been carried out", ["What we did:"]),
        ("ru", "refused", "Ответ на ваш запрос PO-7K3M-9QXD: мы не будем его выполнять",
         ["Государственная инспекция данных (Datu valsts inspekcija)", "статья 77 GDPR",
          "судебной защитой", "Ответ дан:     3 января 2027 г.",
          "Получен:       1 декабря 2026 г., 11:30 по рижскому времени"]),
        ("ru", "done", "Ваш запрос PO-7K3M-9QXD выполнен", ["Что мы сделали:"]),
    ],
)
def test_close_email(settings: Settings, lang: str, outcome: str, subject: str,
                     facts: list[str]) -> None:
    """The "close" e-mail gives the outcome; a refusal adds the DVI's contacts and remedies."""
    record = replace(RECORD, language=lang)
    payload = {**CLOSE, "outcome": outcome}
    message = parsed(render("close", record, message_id=mid("close"), settings=settings,
                            payload=payload))
    assert message["Subject"] == subject and message["In-Reply-To"] == mid("verify")
    text = body(message)
    for fact in (*facts, "PO-7K3M-9QXD", "No account matches your address."):
        assert fact in text, fact
    refusal_only = ("Elijas iela 17, Rīga, LV-1050", "pasts@dvi.gov.lv", "+371 67223131")
    assert all((fact in text) is (outcome == "refused") for fact in refusal_only)


def test_staff_decisions_cannot_add_headers(settings: Settings) -> None:
    """A name or reason carrying CR/LF stays text: no Bcc header, one Subject, one recipient."""
    evil = replace(RECORD, name="Eve\r\nBcc: victim@example.com")
    reason = "Fine.\r\nBcc: victim@example.com\r\n\r\n<script>alert(1)</script>"
    for kind, payload in (("extend", EXTEND), ("close", CLOSE)):
        out = render(kind, evil, message_id=mid(kind), settings=settings,
                     payload={**payload, "reason": reason})
        raw = flatten(out)
        assert not re.search(rb"^Bcc", raw, re.MULTILINE | re.IGNORECASE)
        message = parsed(out)
        assert len(message.get_all("Subject")) == 1 and message["Bcc"] is None
        assert [a.addr_spec for a in message["To"].addresses] == ["janis@example.lv"]
        assert message.get_content_type() == "text/plain"  # no markup is ever interpreted
        assert "  <script>alert(1)</script>" in body(message)


@pytest.mark.parametrize("payload", [None, {"outcome": "maybe", "reason": "x",
                                            "closed_at": "2027-01-03T10:00:00+00:00"}])
def test_close_without_a_decision_is_refused(settings: Settings,
                                             payload: dict[str, str] | None) -> None:
    """A "close" row without a usable outcome cannot be rendered; retrying will not help."""
    with pytest.raises(MessageError, match="close"):
        render("close", RECORD, message_id=mid("close"), settings=settings, payload=payload)


def test_ticket_json_holds_the_tickets_facts(settings: Settings) -> None:
    """The webhook ticket has reference, type, article, requester, details, evidence, dates."""
    ticket = ticket_json(RECORD, settings)
    assert ticket["reference"] == "PO-7K3M-9QXD"
    assert (ticket["type"], ticket["article"]) == ("erasure", "Art. 17")
    assert ticket["requester"] == {"name": "Jānis Bērziņš", "email": "janis@example.lv",
                                   "phone": "+371 20000000", "order_number": None,
                                   "language": "lv"}
    assert ticket["details"] == "Lūdzu, dzēsiet manus datus.\nPaldies!"
    assert ticket["policy"] == {
        "version": "1.0", "language": "lv", "sha256": SHA, "effective": "2026-11-24",
        "viewed_at": "2026-12-01T09:27:00+00:00",
        "url": "https://privatums.pulkstenu-outlets.lv/versions/1.0/",
    }
    assert (ticket["submitted_at"], ticket["verified_at"], ticket["due_at"]) == (
        "2026-12-01T09:30:00+00:00", "2026-12-01T09:50:00+00:00", "2027-01-04"
    )


def test_a_policy_file_edited_after_it_was_read_is_read_again(tmp_path: Path) -> None:
    """The effective date in e-mails is cached per file, but never outlives an edit."""
    from form_service.delivery.emails import _version_of

    path = tmp_path / "index.md"
    path.write_text('---\nversion: "1.0"\neffective: 2026-11-24\nsummary: "x"\n---\n# P\n')
    assert _version_of(path, "lv") == ("1.0", dt.date(2026, 11, 24))
    path.write_text('---\nversion: "1.1"\neffective: 2027-01-15\nsummary: "yy"\n---\n# P\n')
    assert _version_of(path, "lv") == ("1.1", dt.date(2027, 1, 15))
    path.unlink()
    assert _version_of(path, "lv") is None


def test_an_idn_domain_is_sent_as_punycode(settings: Settings, smtp_server: SmtpServer) -> None:
    """anna@pulksteņi.lv is stored as typed and reaches an SMTP server without SMTPUTF8
    as anna@xn--pulkstei-eqb.lv, in the envelope and in To:."""
    out = render("verify", replace(RECORD, email="anna@pulksteņi.lv"), message_id=mid("verify"),
                 settings=settings)
    send_by_smtp(smtp_server.url, out)
    [received] = smtp_server.messages
    assert received.recipients == ("anna@xn--pulkstei-eqb.lv",)
    assert received.message["To"] == "anna@xn--pulkstei-eqb.lv"


_TRICKY = ["a<b>@example.lv", "a,b@example.lv", "a;b@example.lv", "a(b)@example.lv",
           "a..b@example.lv", "jānis@example.lv", "anna@pulksteņi.lv", '"a b"@example.lv',
           "a@[192.0.2.1]", "Anna+x@Example.LV", "a@b", "x@xn--80ak6aa92e.com", "a@-b.lv",
           "ünï@example.lv", "a@example.lv.", " a@example.lv "]


def test_every_address_the_form_accepts_reaches_the_smtp_server(
    settings: Settings, smtp_server: SmtpServer
) -> None:
    """Property: whatever address the form accepts (SMTPUTF8 off, as with a relay that lacks
    it), the verification e-mail to it is taken by a real SMTP server; never a permanent
    "not an e-mail address" or an SMTPUTF8 refusal after the customer was told it was sent."""
    from hypothesis import given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st
    from starlette.datastructures import ImmutableMultiDict

    from form_service.customer.forms import make_form
    from site_config.facts import load_site

    site = load_site(ROOT)
    valid = {"name": "Anna", "request_type": "access", "details": "Please."}
    accepted: list[str] = []

    @hypothesis_settings(max_examples=300, deadline=None, database=None)
    @given(st.one_of(st.emails(), st.sampled_from(_TRICKY),
                     st.builds(lambda a, b: f"{a}@{b}.lv", st.text(max_size=12),
                               st.text(max_size=12))))
    def check(typed: str) -> None:
        form = make_form(site, "en", formdata=ImmutableMultiDict({**valid, "email": typed}),
                         smtputf8=False)
        if not form.validate():
            assert form.email.errors, form.errors
            return
        out = render("verify", replace(RECORD, email=form.email.data), message_id=mid("verify"),
                     settings=settings)
        send_by_smtp(smtp_server.url, out)
        accepted.append(typed)

    check()
    assert len(accepted) == len(smtp_server.messages) > 0
