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

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import Form

from form_service.context import WebContext, web_context
from form_service.deadlines import due_date
from form_service.errors import LinkExpired, LinkNotFound, RateLimited
from form_service.forms import HONEYPOT, MAX_LENGTH, first_errors, make_form, text_fields
from form_service.i18n import language_of_path, texts_of
from form_service.pages import NO_STORE
from form_service.ratelimit import client_address
from form_service.references import new_reference
from form_service.security import (
    CSRF_FIELD,
    MAX_BODY_BYTES,
    check_csrf,
    check_same_origin,
    csrf_cookie_value,
    csrf_field_value,
    set_csrf_cookie,
)
from form_service.store import NewRequest, RequestRecord
from form_service.tokens import TokenError, TokenExpired, make_token, read_token
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
            context = _form_context(request, web, lang, form, text, notice, _CSRF_SLOT, _TOKEN_SLOT)
            html = web.pages.html(request.scope, "form.html", context)
            web.pages.blank_forms.put(key, html)
        html = html.replace(_CSRF_SLOT, csrf_value).replace(_TOKEN_SLOT, token)
    else:
        context = _form_context(request, web, lang, form, text, notice, csrf_value, token)
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
        "notice": texts[notice] if notice else None,
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
    form = make_form(web.site, lang, data={"request_type": chosen})
    return _render_form(request, web, lang, form, blank=True)


def _confirm_url(web: WebContext, lang: str, reference: str, due: dt.date) -> str:
    token = make_token(web.settings.secret_key, "confirm",
                       {"ref": reference, "due": due.isoformat()})
    return f"{web.site.prefix(lang)}request/sent/{token}"


async def _submit(request: Request, web: WebContext, lang: str) -> Response:
    # Cheap refusals first, before the body is even read.
    check_same_origin(request, web.settings)
    peer = request.client.host if request.client else None
    forwarded = request.headers.getlist("x-forwarded-for")
    await request.state.limiter.hit_address(client_address(peer, forwarded, web.proxies))

    # No files, few fields: a browser sends eight fields and never a file.
    raw = await request.form(max_files=0, max_fields=50, max_part_size=MAX_BODY_BYTES)
    data = text_fields(raw)
    check_csrf(request, web.settings, data.getlist(CSRF_FIELD))

    if any(value.strip() for value in data.getlist(HONEYPOT)):
        # Looks like success to the robot; nothing is stored, no e-mail is sent.
        now = _now()
        url = _confirm_url(web, lang, new_reference(), due_date(now))
        return RedirectResponse(url, status_code=303, headers=NO_STORE)

    tokens = data.getlist(FORM_TOKEN_FIELD)
    payload, problem = _read_form_token(web, tokens)
    form = make_form(web.site, lang, formdata=data)
    valid = form.validate()
    if problem is not None or not valid:
        # A genuine token is kept (its viewed_at is when the policy was first shown);
        # a bad one is replaced, and never becomes evidence.
        return _render_form(
            request, web, lang, form,
            token_payload=payload, token=tokens[0] if payload else None,
            notice=problem, status=400,
        )
    assert payload is not None

    try:
        await request.state.limiter.hit_email(form.email.data)
    except RateLimited:
        # A form sent again after it was stored (a double click, a reload) is answered
        # with its confirmation, not refused: it sends no second e-mail.
        stored = await run_in_threadpool(request.state.store.find_submission, payload["sid"])
        if stored is None:
            raise
        url = _confirm_url(web, lang, stored.reference, stored.due_at)
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
    record, created = await run_in_threadpool(request.state.store.create_request, new)
    if created:
        request.state.worker.wake()
    url = _confirm_url(web, lang, record.reference, record.due_at)
    return RedirectResponse(url, status_code=303, headers=NO_STORE)


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


async def verify(request: Request) -> Response:
    web = web_context(request)
    secret = web.settings.secret_key
    token = request.path_params["token"]
    try:
        reference = str(read_token(secret, "verify", token, _FOREVER)["ref"])
    except (TokenError, KeyError):
        raise LinkNotFound() from None
    store = request.state.store
    record: RequestRecord | None = await run_in_threadpool(store.get, reference)
    if record is None:
        # Genuine, but the unverified request has since been deleted.
        raise LinkExpired()
    lang = record.language if record.language in web.site.language_codes else None
    if record.verified_at is None:
        try:
            read_token(secret, "verify", token, web.settings.verify_link_max_age_hours * 3600)
        except TokenExpired:
            raise LinkExpired(lang=lang) from None
        result = await run_in_threadpool(store.verify, reference, _now())
        if result is None:
            raise LinkExpired(lang=lang)
        record, newly = result
        if newly:
            # The ticket to staff and the acknowledgement: sent without giving way.
            request.state.worker.wake(urgent=True)
        template_key = "verified" if newly else "already"
    else:
        template_key = "already"
    lang = lang or web.site.default_language
    texts = texts_of(web.site, lang)
    return web.pages.render(request.scope, "verified.html", {
        "kind": template_key,
        "reference": record.reference,
        "due": format_date(dict(texts), record.due_at),
    }, lang=lang, twin=False)


async def slash_redirect(request: Request) -> Response:
    url = request.url
    return RedirectResponse(url.path + "/" + (f"?{url.query}" if url.query else ""),
                            status_code=308)
