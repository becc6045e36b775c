"""The pages of the rights request: the form, its confirmation, the e-mail link.

Flow (DESIGN, "The rights request"): GET shows the form with a signed form
token; POST checks origin, rate limit, CSRF, honeypot, form token and fields,
stores the request durably and redirects (post/redirect/get) to a
confirmation page; the link in the e-mail verifies the address.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import Form

from form_service.customer.formdata import read_form
from form_service.customer.forms import HONEYPOT, MAX_LENGTH, first_errors, make_form
from form_service.deadlines import RIGA, due_date
from form_service.records import DISCARDED, UNVERIFIED, NewRequest, RequestRecord
from form_service.references import new_reference
from form_service.tokens import TokenError, TokenExpired, make_token, read_token
from form_service.web.context import WebContext, web_context
from form_service.web.deadline import in_time
from form_service.web.errors import BadRequest, LinkExpired, LinkNotFound
from form_service.web.i18n import language_of_path, texts_of
from form_service.web.pages import NO_STORE
from form_service.web.ratelimit import client_address
from form_service.web.security import (
    CSRF_FIELD,
    check_csrf,
    check_same_origin,
    csrf_cookie_value,
    csrf_field_value,
    set_csrf_cookie,
)
from site_config.facts import format_date
from site_config.manifest import version_url
from site_config.versions import PolicyText

FORM_TOKEN_FIELD = "form_token"  # noqa: S105 (a field name, not a secret)
# How long a customer may keep the form open before sending it.
FORM_TOKEN_MAX_AGE = 24 * 3600
# How long the confirmation page's address keeps working (it is bookmarkable).
CONFIRM_MAX_AGE = 30 * 24 * 3600
# A genuine verification token's signature is checked without an age limit
# first, so that an old link can still say "already confirmed" or "expired".
_FOREVER = 100 * 365 * 24 * 3600
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUBMISSION_ID = re.compile(r"^[0-9a-f]{32}$")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- the form -------------------------------------------------------------------------


def _new_form_token(web: WebContext, text: PolicyText, lang: str) -> str:
    """Signed proof of what the customer was shown and when: the client cannot forge
    `viewed_at` or the version (DESIGN: the chain of evidence)."""
    return make_token(
        web.settings.secret_key,
        "form",
        {
            "v": text.id,
            "sha": text.sha256,
            "lang": lang,
            "at": _now().isoformat(),
            "sid": uuid.uuid4().hex,
        },
    )


def _read_form_token(
    web: WebContext, tokens: list[str]
) -> tuple[dict[str, Any] | None, str | None]:
    """(payload, None) for one genuine, fresh token; (None, text key of the problem) otherwise.

    Exactly one token: a browser never sends two, and which one to believe would be a guess.
    """
    if not tokens or tokens == [""]:
        return None, "form_error_token_missing"
    if len(tokens) > 1:
        return None, "form_error_token_invalid"
    token = tokens[0]
    try:
        payload = read_token(web.settings.secret_key, "form", token, FORM_TOKEN_MAX_AGE)
    except TokenExpired:
        return None, "form_error_token_expired"
    except TokenError:
        return None, "form_error_token_invalid"
    try:
        viewed_at = dt.datetime.fromisoformat(payload["at"])
        valid = (
            web.policy.find(payload["lang"], payload["v"]) is not None
            and bool(_SHA256.match(payload["sha"]))
            and bool(_SUBMISSION_ID.match(payload["sid"]))
            and viewed_at.tzinfo is not None
        )
    except (KeyError, TypeError, ValueError):
        valid = False
    if not valid:
        return None, "form_error_token_invalid"
    payload["at"] = viewed_at
    return payload, None


def _render_form(
    request: Request,
    web: WebContext,
    lang: str,
    form: Form,
    *,
    token_payload: dict[str, Any] | None = None,
    token: str | None = None,
    notice: str | None = None,
    notice_params: dict[str, str] | None = None,
    status: int = 200,
    blank: bool = False,
) -> Response:
    """The form page. `blank`: a new, unfilled form, whose page is cached (below)."""
    if token is not None and token_payload is not None:
        text = web.policy.find(token_payload["lang"], token_payload["v"])
        assert text is not None  # _read_form_token checked it
    else:
        text = web.policy.choose(lang, request.query_params.get("v"), web.today())
        token = _new_form_token(web, text, lang)
    cookie = csrf_cookie_value(request, web.settings)
    csrf_value = csrf_field_value(web.settings, cookie)
    if blank:
        # Everyone who opens the form gets the same page but for the two tokens:
        # it is rendered once per address and version, and the tokens put in.
        key = (lang, form.request_type.data, text.id, request.url.path, request.url.query)
        html = web.pages.blank_forms.get(key)
        if html is None:
            context = _form_context(request, web, lang, form, text, None, _CSRF_SLOT, _TOKEN_SLOT)
            html = web.pages.html(request.scope, "form.html", context)
            web.pages.blank_forms.put(key, html)
        html = html.replace(_CSRF_SLOT, csrf_value).replace(_TOKEN_SLOT, token)
    else:
        texts = texts_of(web.site, lang)
        message = texts[notice].format(**(notice_params or {})) if notice else None
        context = _form_context(request, web, lang, form, text, message, csrf_value, token)
        html = web.pages.html(request.scope, "form.html", context)
    response = web.pages.response(html, status=status)
    set_csrf_cookie(response, web.settings, cookie)
    return response


# Stand-ins for the tokens in a cached blank form: random per process, so that no
# query string can spell them, and plain letters, so that escaping leaves them alone.
_CSRF_SLOT = f"csrfslot{secrets.token_hex(12)}"
_TOKEN_SLOT = f"tokenslot{secrets.token_hex(12)}"


def _form_context(
    request: Request, web: WebContext, lang: str, form: Form, text: PolicyText,
    notice: str | None, csrf_value: str, token: str,
) -> dict[str, Any]:
    texts = texts_of(web.site, lang)
    errors = first_errors(form)
    before, _, after = texts["form_version_line"].partition("{link}")
    return {
        "form": form,
        "errors": errors,
        "notice": notice,
        "has_errors": bool(errors or notice),
        "rights": [(r.id, r.label[lang], r.hint[lang]) for r in web.site.rights],
        "version": {
            "before": before,
            "after": after,
            "link": texts["form_version_link"].format(
                version=text.id, date=format_date(dict(texts), text.effective)
            ),
            "url": version_url(web.site, lang, text.id),
        },
        "action": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
        "csrf_field": CSRF_FIELD,
        "csrf_value": csrf_value,
        "form_token_field": FORM_TOKEN_FIELD,
        "form_token": token,
        "honeypot": HONEYPOT,
        "max_length": MAX_LENGTH,
    }


async def request_form(request: Request) -> Response:
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    if request.method == "POST":
        return await _submit(request, web, lang)
    wanted = request.query_params.get("type")
    chosen = wanted if web.site.right(wanted or "") else None
    form = make_form(web.site, lang, data={"request_type": chosen},
                     smtputf8=web.settings.smtputf8)
    return _render_form(request, web, lang, form, blank=True)


def _confirm_url(web: WebContext, lang: str, reference: str, due: dt.date) -> str:
    token = make_token(web.settings.secret_key, "confirm",
                       {"ref": reference, "due": due.isoformat()})
    return f"{web.site.prefix(lang)}request/sent/{token}"


async def _submit(request: Request, web: WebContext, lang: str) -> Response:
    check_same_origin(request, web.settings)
    data = await read_form(request)
    check_csrf(request, web.settings, data.getlist(CSRF_FIELD))

    tokens = data.getlist(FORM_TOKEN_FIELD)
    payload, problem = _read_form_token(web, tokens)
    form = make_form(web.site, lang, formdata=data, smtputf8=web.settings.smtputf8)
    valid = form.validate()
    if payload is not None:
        stored = await in_time(request, request.state.store.find_submission, payload["sid"])
        if stored is not None:
            if valid and _same_request(stored, form):
                # The same form sent again (a double click, a reload): its confirmation,
                # without counting it against the limit or sending a second e-mail.
                url = _confirm_url(web, lang, stored.reference, stored.due_at)
                return RedirectResponse(url, status_code=303, headers=NO_STORE)
            # The customer went back and changed something: say where the first one
            # went, and offer the corrected one as a new request (never silently
            # answer it with the first one's confirmation).
            return _render_form(request, web, lang, form, notice="form_notice_already_sent",
                                notice_params=_already_sent_params(web, lang, stored),
                                status=409)

    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    await request.state.limiter.hit_address(client_address(peer, forwarded, web.proxies))

    if problem is not None or not valid:
        # A genuine token is kept (its viewed_at is when the policy was first shown);
        # a bad one is replaced, and never becomes evidence. A robot that filled the
        # honeypot gets this same answer: a person's invalid form tells it nothing.
        # 200, as GOV.UK's error pattern does: the answer is the page on which the
        # person corrects the form, not a failure (a 400 made the browser log an error
        # and audits call the page broken). Requests that cannot be read stay 4xx.
        return _render_form(
            request, web, lang, form,
            token_payload=payload, token=tokens[0] if payload else None,
            notice=problem, status=200,
        )
    assert payload is not None
    if any(value.strip() for value in data.getlist(HONEYPOT)):
        # Looks like success to the robot; nothing is stored, no e-mail is sent.
        url = _confirm_url(web, lang, new_reference(), due_date(_now()))
        return RedirectResponse(url, status_code=303, headers=NO_STORE)

    new = NewRequest(
        submission_id=payload["sid"],
        request_type=form.request_type.data,
        name=form.name.data,
        email=form.email.data,
        phone=form.phone.data or None,
        order_number=form.order_number.data or None,
        details=form.details.data,
        language=lang,
        policy_version=payload["v"],
        policy_sha256=payload["sha"],
        policy_language=payload["lang"],
        policy_viewed_at=payload["at"],
        submitted_at=_now(),
    )
    # Stored (committed) before the customer is told anything: DESIGN, "stored durably".
    # No per-address refusal here: the cap on verification e-mails (worker) keeps the
    # form from flooding an inbox without letting anyone block another's request.
    record, created = await in_time(request, request.state.store.create_request, new)
    if created:
        request.state.worker.wake()
    url = _confirm_url(web, lang, record.reference, record.due_at)
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


def _same_request(stored: RequestRecord, form: Form) -> bool:
    """True when the form says what the stored request says (a resend, not a correction)."""
    return (
        stored.request_type == form.request_type.data
        and stored.name == form.name.data
        and stored.email == form.email.data
        and stored.details == form.details.data
        and (stored.phone or None) == (form.phone.data or None)
        and (stored.order_number or None) == (form.order_number.data or None)
    )


def _already_sent_params(web: WebContext, lang: str, stored: RequestRecord) -> dict[str, str]:
    texts = texts_of(web.site, lang)
    return {
        "reference": stored.reference,
        "date": format_date(dict(texts), stored.submitted_at.astimezone(RIGA).date()),
        "email": mask_address(stored.email),
    }


def mask_address(email: str) -> str:
    """j***@e***.lv: enough for the customer to recognise, too little to read it off."""
    local, _, domain = email.rpartition("@")
    host, dot, tld = domain.rpartition(".")
    return f"{local[:1]}***@{host[:1]}***{dot}{tld}"


# --- after the form -------------------------------------------------------------------


async def sent_page(request: Request) -> Response:
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    try:
        payload = read_token(web.settings.secret_key, "confirm", request.path_params["token"],
                             CONFIRM_MAX_AGE)
        reference = str(payload["ref"])
        due = dt.date.fromisoformat(payload["due"])
    except (TokenError, KeyError, TypeError, ValueError):
        raise LinkNotFound() from None
    texts = texts_of(web.site, lang)
    return web.pages.render(request.scope, "sent.html", {
        "reference": reference,
        "due": format_date(dict(texts), due),
        "hours": web.settings.verify_link_max_age_hours,
    })


# --- the e-mail's link: a page, and only a POST from it changes anything ---------------
#
# Mail gateways and link scanners fetch every link in an incoming e-mail (and
# some send HEAD first), so opening the link must not confirm anything: else a
# robot would confirm a request someone filed in another person's name. The
# page asks the person, and only the button (a same-origin POST with the CSRF
# cookie the page set) decides. GDPR Art. 12(6): control of the address is the
# identity check, so it must be a person's act.

VERIFY_DECISIONS = ("confirm", "discard")


async def _verified_record(request: Request, web: WebContext) -> RequestRecord:
    """The request a genuine verification link names; LinkNotFound or LinkExpired if none."""
    try:
        reference = str(read_token(web.settings.secret_key, "verify",
                                   request.path_params["token"], _FOREVER)["ref"])
    except (TokenError, KeyError):
        raise LinkNotFound() from None
    record: RequestRecord | None = await in_time(request, request.state.store.get, reference)
    if record is None:
        # Genuine, but the unconfirmed request has since been deleted.
        raise LinkExpired()
    return record


def _record_language(web: WebContext, record: RequestRecord) -> str:
    return record.language if record.language in web.site.language_codes else (
        web.site.default_language)


def _check_link_age(web: WebContext, token: str, lang: str) -> None:
    """An unconfirmed request's link works for POLICY_VERIFY_LINK_MAX_AGE_HOURS."""
    try:
        read_token(web.settings.secret_key, "verify", token,
                   web.settings.verify_link_max_age_hours * 3600)
    except TokenExpired:
        raise LinkExpired(lang=lang) from None


async def verify_page(request: Request) -> Response:
    """GET/HEAD: what the link is about, and the two buttons. Changes nothing."""
    web = web_context(request)
    record = await _verified_record(request, web)
    lang = _record_language(web, record)
    if record.status == UNVERIFIED:
        _check_link_age(web, request.path_params["token"], lang)
    texts = texts_of(web.site, lang)
    right = web.site.right(record.request_type)
    cookie = csrf_cookie_value(request, web.settings)
    response = web.pages.render(request.scope, "verify.html", {
        "state": record.status if record.status in (UNVERIFIED, DISCARDED) else "verified",
        "reference": record.reference,
        "request_type": right.label[lang] if right else record.request_type,
        "submitted": format_date(dict(texts), record.submitted_at.astimezone(RIGA).date()),
        "due": format_date(dict(texts), record.due_at),
        "action": request.url.path,
        "csrf_field": CSRF_FIELD,
        "csrf_value": csrf_field_value(web.settings, cookie),
        "decisions": VERIFY_DECISIONS,
    }, lang=lang, twin=False)
    set_csrf_cookie(response, web.settings, cookie)
    return response


async def verify_decision(request: Request) -> Response:
    """POST from the page's buttons: confirm the request, or discard it as not asked for."""
    web = web_context(request)
    check_same_origin(request, web.settings)
    record = await _verified_record(request, web)
    lang = _record_language(web, record)
    data = await read_form(request)
    check_csrf(request, web.settings, data.getlist(CSRF_FIELD), lang=lang,
               key="form_error_verify_csrf")
    decision = data.getlist("decision")
    if len(decision) != 1 or decision[0] not in VERIFY_DECISIONS:
        raise BadRequest(lang=lang)
    if record.status == UNVERIFIED:
        _check_link_age(web, request.path_params["token"], lang)
        store = request.state.store
        if decision[0] == "confirm":
            result = await in_time(request, store.verify, record.reference, _now())
            if result is None:
                raise LinkExpired(lang=lang)
            if result[1]:
                # The ticket to staff and the acknowledgement: sent without giving way.
                request.state.worker.wake(urgent=True)
        else:
            if await in_time(request, store.discard, record.reference, _now()) is None:
                raise LinkExpired(lang=lang)
    # Post/redirect/get: the page at the link now says what became of the request.
    return RedirectResponse(request.url.path, status_code=303, headers=NO_STORE)


async def slash_redirect(request: Request) -> Response:
    url = request.url
    return RedirectResponse(url.path + "/" + (f"?{url.query}" if url.query else ""),
                            status_code=308)
