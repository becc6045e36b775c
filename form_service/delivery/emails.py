"""The e-mails, rendered at send time from the request record.

The outbox row holds no text, only, for the staff's decisions ("extend",
"close"), the facts of the decision (new due date, outcome, reason); a
message is always built from those, the stored request and today's catalogue
(site_config/texts/email.<lang>.yml). Only plain-text bodies, so nothing a
customer or staff member typed can become markup; every header value that
could carry customer text is stripped of CR, LF and NUL, so a name like
"Eve\\r\\nBcc: x@y" stays a name (RFC 5322 2.2: a header field ends at CRLF).
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Any

from form_service.addresses import AddressError, envelope_address
from form_service.deadlines import RIGA
from form_service.outbox import Delivery, message_id_for
from form_service.records import RequestRecord
from form_service.settings import Settings, SettingsError
from form_service.text import one_line, plain_text
from form_service.tokens import make_token
from site_config.facts import Site, format_date, load_site, load_ui_texts
from site_config.versions import VersionError, archive_path, read_policy_file

KINDS = ("verify", "ticket", "ack", "extend", "close", "info", "ready", "code", "reply",
         "withdrawn")
# Messages to the customer after the confirmation are threaded under it.
_THREADED = ("ack", "extend", "close", "info", "ready", "code")
# Follow-ups to staff, threaded under the ticket (a reply to a question, a withdrawal).
_FOLLOW_UPS = ("reply", "withdrawn")
# What may stand in an address: no spaces, controls, quotes or delimiters, one "@".
_ADDR_SPEC = re.compile(r"[^\s\x00-\x1f\x7f<>()\[\]\\,;:\"@]+@[^\s\x00-\x1f\x7f<>()\[\]\\,;:\"@]+")


class MessageError(ValueError):
    """Raised when a message cannot be built (an unusable address); retrying will not help."""


@dataclass(frozen=True)
class Outgoing:
    """A message and its SMTP envelope (never derived from headers)."""

    message: EmailMessage
    sender: str
    recipients: tuple[str, ...]


def header_text(value: str) -> str:
    """A header value with CR, LF, NUL, C1, bidi and other controls replaced by spaces."""
    return one_line(value)


def address(name: str, addr_spec: str, *, customer: bool = True) -> Address:
    """A header address. A customer's is checked as the form checks it, its domain in
    punycode so that the envelope needs no SMTPUTF8; our own (settings) may be local,
    like privacy@localhost."""
    addr_spec = addr_spec.strip()
    if not _ADDR_SPEC.fullmatch(addr_spec):
        raise MessageError("not an e-mail address")
    try:
        if customer:
            # Built from its parts: Python's parser refuses a non-ASCII local part,
            # which the form accepts where the mail path has SMTPUTF8 (addresses.py).
            local, _, domain = envelope_address(addr_spec).rpartition("@")
            return Address(display_name=header_text(name), username=local, domain=domain)
        return Address(display_name=header_text(name), addr_spec=addr_spec)
    except AddressError:
        raise MessageError("not an e-mail address") from None
    except (ValueError, IndexError) as exc:
        raise MessageError(f"not an e-mail address ({type(exc).__name__})") from None


_LOOKS_ENCODED = re.compile(r"=\?")
# Bytes of text per encoded-word: base64 of 45 bytes is 60 characters, so that a line
# "=?utf-8?b?...?=" stays within RFC 5322's 78.
_WORD_BYTES = 45


def _set_address(message: EmailMessage, header: str, value: Address) -> None:
    """Set an address header; a display name that looks like an RFC 2047 encoded-word
    ("=?utf-8?q?URGENT...?=") is itself sent encoded, so a reader decodes it once and
    shows the characters the customer typed, not a text of their choosing.

    Python's email package would send such a name as it is, and every mail reader
    (Python's own parser too) would decode it.
    """
    name = value.display_name
    if not _LOOKS_ENCODED.search(name):
        message[header] = value
        return
    words, chunk = [], ""
    for char in name:
        if len((chunk + char).encode()) > _WORD_BYTES:
            words.append(chunk)
            chunk = ""
        chunk += char
    words.append(chunk)
    encoded = "\r\n ".join(
        f"=?utf-8?b?{base64.b64encode(word.encode()).decode('ascii')}?=" for word in words)
    # set_raw: stored and written as given (every line is short, so never refolded).
    message.set_raw(header, f"{encoded}\r\n <{value.addr_spec}>")


def _configured(value: str, default_name: str, setting: str) -> Address:
    """An address from settings: either a bare address or "Name <address>"."""
    name, addr_spec = parseaddr(value)
    try:
        return address(name or default_name, addr_spec or value, customer=False)
    except MessageError:
        # A fault of the setup, not of the message: it must not fail messages for good.
        raise SettingsError(f"{setting}={value!r} is not an e-mail address.") from None


def render(
    kind: str,
    record: RequestRecord,
    *,
    message_id: str,
    settings: Settings,
    now: dt.datetime | None = None,
    payload: Mapping[str, Any] | None = None,
    gathered: Sequence[RequestRecord] = (),
) -> Outgoing:
    """The message of one outbox row; `payload` is the row's (the decision staff made).

    `gathered` (verification e-mails only): the other requests made with the same
    address that this e-mail carries the links of (store.gather_verification).
    """
    site = load_site(settings.root)
    sender = _configured(settings.mail_from, site.controller_name, "POLICY_MAIL_FROM")
    if kind in ("ticket", *_FOLLOW_UPS):
        lang = _language(site, site.staff_language)
        to = _configured(settings.staff_email, "", "POLICY_STAFF_EMAIL")
        reply_to = address(record.name, record.email)
    elif kind in ("verify", *_THREADED):
        lang = _language(site, record.language)
        # The bare address: the name was typed by whoever filled in the form, and
        # as a display name it would put their words in any inbox, in our name.
        to = address("", record.email)
        reply_to = _configured(
            site.controller_email, site.controller_name, "site.yml controller.email"
        )
    else:
        raise MessageError(f"no e-mail is defined for the outbox kind {kind!r}")
    texts = load_ui_texts(site.root, lang)
    values = _values(kind, record, site, settings, texts, lang)
    # "close" has one text per outcome: a refusal must say more (GDPR Art. 12(4)).
    key = kind
    if kind == "verify":
        values.update(_verification_list([record, *gathered], site, settings, texts, lang))
        if gathered:
            key = "verify_many"
    if kind in ("extend", "close"):
        values.update(_decision(kind, payload, site, texts, lang))
        if kind == "close":
            key = f"close_{values['outcome']}"
    if kind in ("info", "ready", "code", *_FOLLOW_UPS):
        values.update(_follow_up(kind, payload, texts))

    # RFC 6531: an address with non-ASCII letters before the @ is written as UTF-8 in
    # the headers, and the mailer then needs the server's SMTPUTF8.
    utf8 = not (to.addr_spec.isascii() and reply_to.addr_spec.isascii())
    message = EmailMessage(policy=policy.SMTPUTF8 if utf8 else policy.SMTP)
    message["From"] = sender
    message["To"] = to
    _set_address(message, "Reply-To", reply_to)
    message["Subject"] = header_text(texts[f"email_{key}_subject"].format(**values))
    key = "verify" if kind == "verify" else key  # one body, listing one request or more
    message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    message["Message-ID"] = message_id
    if kind in (*_THREADED, *_FOLLOW_UPS):
        # Threads the receipt under the confirmation e-mail in the customer's mailbox, and
        # a follow-up under the ticket in the staff's (RFC 5322 3.6.4).
        domain = message_id.strip("<>").rpartition("@")[2]
        parent = message_id_for(record.reference, "verify" if kind in _THREADED else "ticket",
                                domain)
        message["In-Reply-To"] = parent
        message["References"] = parent
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to these
    body = texts[f"email_{key}_body"].format(**values)
    # Quoted-printable keeps every line 7-bit and short, whatever the server supports.
    message.set_content(body, cte="quoted-printable")
    message["Content-Language"] = lang  # after set_content, which resets Content-* headers
    return Outgoing(message, sender.addr_spec, (to.addr_spec,))


def staff_invite(email: str, name: str, link: str, lang: str, hours: int,
                 settings: Settings, *, now: dt.datetime | None = None) -> Outgoing:
    """The e-mail with a staff member's one-time enrolment link for the console.

    Texts from console.<lang>.yml (console_invite_*); addressed to the bare address,
    like every e-mail we send; nothing in it but our words, the name and the link.
    """
    site = load_site(settings.root)
    lang = _language(site, lang)
    texts = load_ui_texts(site.root, lang)
    sender = _configured(settings.mail_from, site.controller_name, "POLICY_MAIL_FROM")
    to = address("", email, customer=False)
    values = {"name": header_text(name), "link": link, "hours": hours,
              "controller": site.controller_name}
    message = EmailMessage(policy=policy.SMTPUTF8 if not to.addr_spec.isascii() else policy.SMTP)
    message["From"] = sender
    message["To"] = to
    message["Subject"] = header_text(texts["console_invite_subject"].format(**values))
    message["Date"] = format_datetime(now or dt.datetime.now(dt.UTC))
    domain = site.controller_email.rpartition("@")[2]
    message["Message-ID"] = make_msgid("staff-invite", domain=domain)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(texts["console_invite_body"].format(**values), cte="quoted-printable")
    message["Content-Language"] = lang
    return Outgoing(message, sender.addr_spec, (to.addr_spec,))


def webhook_json(delivery: Delivery, settings: Settings) -> dict[str, Any]:
    """The body of a webhook call: the ticket, or a follow-up naming the ticket it follows
    (`in_reply_to`, the ticket's Message-ID, which the ticket's call carried in
    X-Policy-Delivery)."""
    if delivery.kind == "webhook":
        return ticket_json(delivery.record, settings)
    event = delivery.kind.removeprefix("webhook_")
    payload = delivery.payload or {}
    domain = delivery.message_id.strip("<>").rpartition("@")[2]
    body: dict[str, Any] = {
        "event": event,
        "reference": delivery.record.reference,
        "in_reply_to": message_id_for(delivery.record.reference, "ticket", domain),
        "at": payload.get("at") or None,
    }
    if event == "reply":
        body.update(question=_body_text(str(payload.get("question", ""))),
                    text=_body_text(str(payload.get("text", ""))),
                    asked_at=payload.get("asked_at"))
    return body


def ticket_json(record: RequestRecord, settings: Settings) -> dict[str, Any]:
    """The ticket's facts for the helpdesk webhook: what the ticket e-mail says, as data.

    Times are ISO 8601 in UTC; the due date is a date (the last day in time,
    GDPR Art. 12(3)); the policy block is the evidence of the text the
    customer saw, with the URL of its archived copy.
    """
    site = load_site(settings.root)
    right = site.right(record.request_type)
    policy_lang = _language(site, record.policy_language)
    effective = _effective(site, policy_lang, record.policy_version)

    def utc(moment: dt.datetime | None) -> str | None:
        return moment.astimezone(dt.UTC).isoformat() if moment else None

    return {
        "reference": record.reference,
        "type": record.request_type,
        "type_label": right.label if right else {},
        "article": right.article if right else None,
        "requester": {
            "name": header_text(record.name),
            "email": record.email,
            "phone": header_text(record.phone) if record.phone else None,
            "order_number": header_text(record.order_number) if record.order_number else None,
            "language": record.language,
        },
        "details": _body_text(record.details),
        "policy": {
            "version": record.policy_version,
            "language": record.policy_language,
            "sha256": record.policy_sha256,
            "effective": effective.isoformat() if effective else None,
            "viewed_at": utc(record.policy_viewed_at),
            "url": policy_url(record, site, settings),
        },
        "submitted_at": utc(record.submitted_at),
        "verified_at": utc(record.verified_at),
        "due_at": record.due_at.isoformat(),
        "controller": site.controller_name,
    }


def policy_url(record: RequestRecord, site: Site, settings: Settings) -> str:
    """The archived text of the policy version the customer saw, in the language they saw."""
    lang = _language(site, record.policy_language)
    return f"{settings.base_url}{site.prefix(lang)}versions/{record.policy_version}/"


def _decision(
    kind: str, payload: Mapping[str, Any] | None, site: Site, texts: dict[str, Any], lang: str
) -> dict[str, Any]:
    """The values of a staff decision, from the outbox row that reports it."""
    if payload is None:
        raise MessageError(f"the outbox row of a {kind!r} e-mail lacks its decision")
    try:
        if kind == "extend":
            return {
                "due": format_date(texts, dt.date.fromisoformat(payload["due_at"])),
                "previous_due": format_date(
                    texts, dt.date.fromisoformat(payload["previous_due_at"])
                ),
                "reason": _staff_text(payload["reason"]),
            }
        outcome = payload["outcome"]
        if outcome not in ("done", "refused"):
            raise ValueError(outcome)
        closed_at = dt.datetime.fromisoformat(payload["closed_at"])
    except (TypeError, KeyError, ValueError):
        raise MessageError(f"the outbox row of a {kind!r} e-mail has no usable decision") from None
    authority = site.authority
    names = authority.get("name", {})
    return {
        "outcome": outcome,
        "reason": _staff_text(payload["reason"]),
        "closed_at": format_date(texts, closed_at.astimezone(RIGA).date()),
        "authority_name": names.get(lang) or names.get(site.default_language, ""),
        "authority_address": authority.get("address", ""),
        "authority_email": authority.get("email", ""),
        "authority_phone": authority.get("phone", ""),
        "authority_website": authority.get("website", ""),
    }


def _staff_text(text: str) -> str:
    """The reason staff wrote, indented under its heading."""
    lines = _body_text(str(text)).strip("\n").split("\n")
    return "\n".join(f"  {line}".rstrip() for line in lines)


def _language(site: Site, lang: str) -> str:
    return lang if lang in site.language_codes else site.default_language


def _values(
    kind: str,
    record: RequestRecord,
    site: Site,
    settings: Settings,
    texts: dict[str, Any],
    lang: str,
) -> dict[str, Any]:
    right = site.right(record.request_type)
    policy_lang = _language(site, record.policy_language)
    effective = _effective(site, policy_lang, record.policy_version)
    not_given = texts["email_not_given"]
    # Staff get exact ISO 8601 times with the offset (evidence); customers a readable time.
    when = _iso if kind in ("ticket", *_FOLLOW_UPS) else (lambda t: _readable(texts, t))
    values: dict[str, Any] = {
        "reference": record.reference,
        "request_type": right.label.get(lang, right.id) if right else record.request_type,
        "article": right.article if right else "?",
        "name": header_text(record.name),
        "email": record.email,
        "phone": header_text(record.phone or "") or not_given,
        "order_number": header_text(record.order_number or "") or not_given,
        "language": record.language,
        "details": _quoted(record.details),
        "due": format_date(texts, record.due_at),
        "policy_version": record.policy_version,
        "policy_language": record.policy_language,
        "policy_sha256": record.policy_sha256,
        "policy_effective": format_date(texts, effective) if effective else not_given,
        "policy_url": policy_url(record, site, settings),
        "versions_url": f"{settings.base_url}/versions.json",
        "policy_viewed_at": when(record.policy_viewed_at),
        "submitted_at": when(record.submitted_at),
        "verified_at": when(record.verified_at) if record.verified_at else not_given,
        "controller": site.controller_name,
        "controller_email": site.controller_email,
        "hours": settings.verify_link_max_age_hours,
        "ttl_days": math.ceil(settings.unverified_ttl_hours / 24),
        "status_url": status_link(record, settings, lang),
    }
    return values


def status_link(record: RequestRecord, settings: Settings, lang: str | None = None) -> str:
    """The request's status page (customer/status.py): signed, bound to the request by its
    random key, so it works as long as the request is kept and no longer."""
    site = load_site(settings.root)
    lang = _language(site, lang or record.language)
    token = make_token(settings.secret_key, "status",
                       {"ref": record.reference, "k": record.status_key or ""})
    return f"{settings.base_url}{site.prefix(lang)}request/status/{token}"


def _follow_up(kind: str, payload: Mapping[str, Any] | None,
               texts: dict[str, Any]) -> dict[str, Any]:
    """The values of a message after the confirmation, from its outbox row."""
    if payload is None:
        raise MessageError(f"the outbox row of a {kind!r} e-mail lacks its content")
    try:
        if kind == "info":
            return {"question": _staff_text(payload["question"])}
        if kind == "code":
            code = str(payload["code"])
            if not (len(code) == 6 and code.isdigit()):
                raise ValueError(code)
            return {"code": code, "minutes": int(payload["minutes"])}
        if kind == "ready":
            until = dt.datetime.fromisoformat(payload["files_until"])
            return {"files": len(payload["files"]),
                    "files_until": format_date(texts, until.astimezone(RIGA).date())}
        if kind == "reply":
            return {"question": _staff_text(payload["question"]),
                    "reply": _quoted(str(payload["text"]))}
        return {}
    except (TypeError, KeyError, ValueError):
        raise MessageError(f"the outbox row of a {kind!r} e-mail is not usable") from None


def verify_link(reference: str, settings: Settings) -> str:
    token = make_token(settings.secret_key, "verify", {"ref": reference})
    return f"{settings.base_url}/request/verify/{token}"


def _verification_list(records: Sequence[RequestRecord], site: Site, settings: Settings,
                       texts: dict[str, Any], lang: str) -> dict[str, Any]:
    """The requests a verification e-mail lists, each with its own link; only our words."""
    items = []
    for record in records:
        right = site.right(record.request_type)
        item = texts["email_verify_item"].format(
            reference=record.reference,
            request_type=right.label.get(lang, right.id) if right else record.request_type,
            submitted=format_date(texts, record.submitted_at.astimezone(RIGA).date()),
            due=format_date(texts, record.due_at),
            link=verify_link(record.reference, settings),
        )
        items.append("\n".join(f"  {line}" for line in item.splitlines()))
    return {
        "count": len(records),
        "intro": texts["email_verify_intro_many" if len(records) > 1 else "email_verify_intro_one"],
        "requests": "\n\n".join(items),
    }


def _effective(site: Site, lang: str, version: str) -> dt.date | None:
    """The effective date of a version: from its archive file, or the working copy."""
    working_copy = site.content_dir / lang / "index.md"
    for path in (archive_path(site.content_dir, lang, version), working_copy):
        found = _version_of(path, lang)
        if found is not None and found[0] == version:
            return found[1]
    return None


# (path, lang) -> (mtime_ns, size, (version, effective)): every e-mail names a policy
# version, and parsing its front matter again for each one cost more than the rest of
# the message (bench/form_load.py). A changed file has a new mtime or size.
_versions_seen: dict[tuple[Path, str], tuple[int, int, tuple[str, dt.date] | None]] = {}


def _version_of(path: Path, lang: str) -> tuple[str, dt.date] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    seen = _versions_seen.get((path, lang))
    if seen is not None and seen[:2] == (stat.st_mtime_ns, stat.st_size):
        return seen[2]
    try:
        text = read_policy_file(path, lang)
        found: tuple[str, dt.date] | None = (text.id, text.effective)
    except (VersionError, OSError, UnicodeError):
        found = None
    _versions_seen[(path, lang)] = (stat.st_mtime_ns, stat.st_size, found)
    return found


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(RIGA).isoformat(timespec="seconds")


def _readable(texts: dict[str, Any], moment: dt.datetime) -> str:
    local = moment.astimezone(RIGA)
    return str(texts["email_time_format"]).format(
        date=format_date(texts, local.date()), time=f"{local:%H:%M}"
    )


def _body_text(value: str | None) -> str:
    if not value:
        return ""
    return plain_text(value.replace("\r\n", "\n").replace("\r", "\n"))


def _quoted(text: str) -> str:
    """The customer's words, each line marked "> " so that they stand apart from ours."""
    lines = _body_text(text).strip("\n").split("\n") or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)
