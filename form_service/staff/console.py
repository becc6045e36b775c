"""The staff console at /staff/: the register at a glance, every action in two clicks.

Mounted by app.py only when POLICY_STAFF_CONSOLE=on. Every page but sign-in
and enrolment needs a session (auth.py, members.py): a GET without one is sent
to the sign-in page, a POST refused. Every POST is same-origin (Origin equal to
POLICY_BASE_URL's) and carries the service's CSRF token (web/security.py).
Every page is `no-store` and under the site's Content-Security-Policy: the one
script is a first-party file (static/console.js), the charts are SVG drawn here.

Each view of a request's personal data and each action is an event naming
the staff member (acting.py; GDPR Art. 5(2)).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import json
import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from limits import parse
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from form_service import answer_files
from form_service.acting import CONSOLE, Actor, as_actor
from form_service.answer_files import AnswerFileError, AnswerFiles, StoredFile
from form_service.customer.formdata import read_form
from form_service.deadlines import RIGA
from form_service.delivery.emails import policy_url
from form_service.followup import FollowUp
from form_service.records import (
    CLOSED,
    DISCARDED,
    MAX_EXTENSION_MONTHS,
    OPEN,
    STATUSES,
    UNVERIFIED,
    NotAllowed,
    RequestRecord,
    UnknownRequest,
)
from form_service.references import normalise_reference
from form_service.settings import SettingsError
from form_service.staff import overview as charts
from form_service.staff.auth import (
    Ceremonies,
    PasskeyError,
    clear_session_cookie,
    parse_credential,
    session_token,
    set_session_cookie,
)
from form_service.staff.members import ChallengeInvalid, InviteInvalid, Member, Members
from form_service.staff.previews import (
    close_payload,
    extension_payload,
    plan_extension,
    preview_mail,
)
from form_service.staff.register import register_entries, register_text
from form_service.staff.uploads import read_upload
from form_service.store import Store
from form_service.text import one_line, plain_text
from form_service.web.context import WebContext
from form_service.web.deadline import in_time
from form_service.web.errors import (
    CrossSiteRequest,
    CsrfFailed,
    RateLimited,
    Unavailable,
    WebError,
)
from form_service.web.i18n import plural_category, texts_of
from form_service.web.pages import NO_STORE, TEMPLATES
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
from site_config.versions import PolicyText

HERE = Path(__file__).parent
PAGE_SIZE = 25
# Failed sign-ins per client address (OWASP Authentication: limit failed attempts);
# once used up, every try is refused until the window moves on.
SIGN_IN_FAILURES = parse("10/15 minutes")
MAX_REASON = 5000
DONE_MESSAGES = ("extended", "closed", "noted", "retried", "asked", "answered")
FILTER_STATUSES = ("open", "all", *[s for s in STATUSES if s != DISCARDED], "closed")
DUE_FILTERS = ("", "overdue", "week")

Handler = Callable[[Request, "Console", Member], Awaitable[Response]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Console:
    """What the console's handlers share: rendering in the staff's language, the ceremonies."""

    def __init__(self, web: WebContext) -> None:
        self.web = web
        self.site = web.site
        self.settings = web.settings
        self.ceremonies = Ceremonies(web.settings, web.site.controller_name)
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(HERE / "templates"),
                                        jinja2.FileSystemLoader(TEMPLATES)]),
            autoescape=True, undefined=jinja2.StrictUndefined,
            trim_blocks=True, lstrip_blocks=True,
        )

    def language(self, member: Member | None) -> str:
        lang = member.language if member else self.site.staff_language
        return lang if lang in self.site.language_codes else self.site.default_language

    def texts(self, lang: str) -> dict[str, Any]:
        return dict(texts_of(self.site, lang))

    def render(self, request: Request, template: str, context: dict[str, Any], *,
               member: Member | None, status: int = 200, nav: str = "",
               lang: str | None = None) -> HTMLResponse:
        lang = lang if lang in self.site.language_codes else self.language(member)
        texts = self.texts(lang)
        cookie = csrf_cookie_value(request, self.settings)
        look = self.web.pages.look
        html = self.env.get_template(template).render(
            lang=lang, t=texts, member=member, nav=nav,
            site_name=look.site_names.get(lang, self.site.controller_name),
            stylesheets=(*look.stylesheets, "/staff/assets/console.css"),
            body_attributes=look.body_attributes,
            csrf_field=CSRF_FIELD, csrf_value=csrf_field_value(self.settings, cookie),
            date=lambda day: format_date(texts, day),
            when=lambda moment: _when(texts, moment),
            plural=lambda key, n: str(texts[key][plural_category(lang, n)]).format(n=n),
            **context,
        )
        response = HTMLResponse(html, status_code=status, headers=NO_STORE)
        set_csrf_cookie(response, self.settings, cookie)
        return response

    def error(self, request: Request, status: int, key: str, member: Member | None,
              headers: dict[str, str] | None = None) -> HTMLResponse:
        response = self.render(request, "console_error.html", {"key": key}, member=member,
                               status=status)
        response.headers.update(headers or {})
        return response


def _when(texts: dict[str, Any], moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(RIGA)
    return f"{format_date(texts, local.date())} {local:%H:%M}"


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def _members(request: Request) -> Members:
    return Members(request.state.store)


def _store(request: Request) -> Store:
    store: Store = request.state.store
    return store


def _actor(member: Member) -> Actor:
    return Actor(by=member.email, via=CONSOLE)


async def _current_member(request: Request) -> Member | None:
    return await in_time(request, _members(request).session, session_token(request), _now())


def _staff_error(exc: WebError) -> str:
    """The console's text for a refusal (its own words, in the staff's language)."""
    if isinstance(exc, CsrfFailed):
        return "console_error_csrf"
    if isinstance(exc, CrossSiteRequest):
        return "console_error_cross_site"
    if isinstance(exc, RateLimited):
        return "console_error_rate_limited"
    if isinstance(exc, Unavailable):
        return "console_error_unavailable"
    return exc.key if exc.key.startswith("console_") else "console_error_bad_request"


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """The handler for members only; a POST must also be same-origin with our CSRF token."""

    async def endpoint(request: Request) -> Response:
        console = _console(request)
        try:
            member = await _current_member(request)
        except Unavailable as exc:
            return console.error(request, exc.status, _staff_error(exc), None)
        if member is None:
            if request.method in ("GET", "HEAD"):
                return RedirectResponse("/staff/sign-in", status_code=303, headers=NO_STORE)
            return console.error(request, 401, "console_error_signed_out", None)
        try:
            if request.method == "POST":
                check_same_origin(request, console.settings)
            return await handler(request, console, member)
        except WebError as exc:
            return console.error(request, exc.status, _staff_error(exc), member)
        except UnknownRequest:
            return console.error(request, 404, "console_error_no_request", member)

    return endpoint


async def _form(request: Request) -> Any:
    data = await read_form(request)
    check_csrf(request, _console(request).settings, data.getlist(CSRF_FIELD))
    return data


async def _json(request: Request) -> dict[str, Any]:
    """A JSON body from console.js: same origin, our CSRF token in it."""
    settings = _console(request).settings
    check_same_origin(request, settings)
    body = await request.body()
    try:
        data = json.loads(body) if body else {}
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    token = data.get("csrf")
    check_csrf(request, settings, [token] if isinstance(token, str) else [])
    return data


def _json_error(console: Console, lang: str, key: str, status: int) -> JSONResponse:
    texts = console.texts(lang)
    text = texts.get(key) or texts[f"{key}_text"]
    return JSONResponse({"error": text}, status_code=status, headers=NO_STORE)


# -- sign-in, enrolment, sign-out ----------------------------------------------------


async def sign_in_page(request: Request) -> Response:
    console = _console(request)
    if await _current_member(request) is not None:
        return RedirectResponse("/staff/", status_code=303, headers=NO_STORE)
    signed_out = request.query_params.get("signed-out") is not None
    return console.render(request, "sign_in.html", {"signed_out": signed_out}, member=None)


def _client(request: Request) -> str:
    peer = request.client.host if request.client else None
    return client_address(peer, request.headers.getlist("x-forwarded-for"),
                          _console(request).web.proxies)


async def sign_in_options(request: Request) -> Response:
    console = _console(request)
    lang = console.language(None)
    try:
        await _json(request)
        await request.state.limiter.check(SIGN_IN_FAILURES, "staff-sign-in", _client(request))
    except WebError as exc:
        return _json_error(console, lang, _staff_error(exc), exc.status)
    options, challenge = console.ceremonies.authentication_options()
    await in_time(request, _members(request).new_challenge, challenge, "sign-in", None, _now())
    return JSONResponse({"options": json.loads(options)}, headers=NO_STORE)


async def sign_in(request: Request) -> Response:
    """A passkey's answer: a session, or a refusal counted against the client's address."""
    console = _console(request)
    lang = console.language(None)
    client = _client(request)
    try:
        await _json(request)
        await request.state.limiter.check(SIGN_IN_FAILURES, "staff-sign-in", client)
    except WebError as exc:
        return _json_error(console, lang, _staff_error(exc), exc.status)
    members = _members(request)
    now = _now()
    try:
        data, challenge, credential_id = parse_credential(await request.body())
        await in_time(request, members.take_challenge, challenge, "sign-in", now)
        passkey = await in_time(request, members.passkey, credential_id)
        if passkey is None:
            raise PasskeyError("no such passkey (its member may have been removed)")
        count = console.ceremonies.verify_authentication(data["credential"], passkey, challenge)
    except (PasskeyError, ChallengeInvalid):
        await request.state.limiter.count(SIGN_IN_FAILURES, "staff-sign-in", client)
        return _json_error(console, lang, "console_sign_in_failed", 400)
    await in_time(request, members.used, credential_id, count, now)
    return await _start_session(request, passkey.member, "staff_signed_in", now)


async def _start_session(request: Request, member: Member, kind: str,
                         now: dt.datetime) -> Response:
    token = await in_time(request, _members(request).start_session, member.id, now)
    await in_time(request, as_actor(_actor(member), _store(request).register_event),
                           kind, now, {"member": member.email})
    response = JSONResponse({"next": "/staff/"}, headers=NO_STORE)
    set_session_cookie(response, token)
    return response


async def enrol_page(request: Request) -> Response:
    console = _console(request)
    try:
        member = await in_time(request, _members(request).invited,
                                        request.path_params["token"], _now())
    except InviteInvalid as exc:
        status = 404 if exc.state == "unknown" else 410
        return console.error(request, status, f"console_error_invite_{exc.state}", None)
    # The page speaks the invitee's language, before they have a session.
    return console.render(request, "enrol.html", {
        "invitee": member, "request_path": f"/staff/enrol/{request.path_params['token']}"},
        member=None, lang=member.language)


async def enrol_options(request: Request) -> Response:
    console = _console(request)
    lang = console.language(None)
    try:
        await _json(request)
        member = await in_time(request, _members(request).invited,
                                        request.path_params["token"], _now())
    except WebError as exc:
        return _json_error(console, lang, _staff_error(exc), exc.status)
    except InviteInvalid as exc:
        return _json_error(console, lang, f"console_error_invite_{exc.state}_text", 410)
    options, challenge = console.ceremonies.registration_options(member)
    await in_time(request, _members(request).new_challenge, challenge, "enrol", member.id,
                           _now())
    return JSONResponse({"options": json.loads(options)}, headers=NO_STORE)


async def enrol(request: Request) -> Response:
    console = _console(request)
    members = _members(request)
    token = request.path_params["token"]
    now = _now()
    try:
        await _json(request)
        member = await in_time(request, members.invited, token, now)
    except WebError as exc:
        return _json_error(console, console.language(None), _staff_error(exc), exc.status)
    except InviteInvalid as exc:
        return _json_error(console, console.language(None),
                           f"console_error_invite_{exc.state}_text", 410)
    lang = console.language(member)
    try:
        data, challenge, _ = parse_credential(await request.body())
        owner = await in_time(request, members.take_challenge, challenge, "enrol", now)
        if owner != member.id:
            raise PasskeyError("the challenge was handed to someone else")
        new = console.ceremonies.verify_registration(data["credential"], challenge)
        member = await in_time(request, members.enrol, token, new.credential_id,
                                        new.public_key, new.sign_count, now)
    except (PasskeyError, ChallengeInvalid):
        return _json_error(console, lang, "console_enrol_failed", 400)
    except InviteInvalid as exc:
        return _json_error(console, lang, f"console_error_invite_{exc.state}_text", 410)
    return await _start_session(request, member, "staff_enrolled", now)


@signed_in
async def sign_out(request: Request, console: Console, member: Member) -> Response:
    await _form(request)
    await in_time(request, _members(request).end_session, session_token(request))
    await in_time(request, as_actor(_actor(member), _store(request).register_event),
                           "staff_signed_out", _now(), {"member": member.email})
    response = RedirectResponse("/staff/sign-in?signed-out", status_code=303, headers=NO_STORE)
    clear_session_cookie(response)
    return response


# -- the overview and the list ------------------------------------------------------------


def _today(console: Console) -> dt.date:
    return _now().astimezone(RIGA).date()


def _type_labels(console: Console, lang: str) -> dict[str, str]:
    return {r.id: r.label.get(lang, r.id) for r in console.site.rights}


@signed_in
async def overview_page(request: Request, console: Console, member: Member) -> Response:
    lang = console.language(member)
    texts = console.texts(lang)
    today = _today(console)
    records = await in_time(request, _store(request).list_requests)
    types = [r.id for r in console.site.rights]
    view = charts.build(records, types, today)
    labels = _type_labels(console, lang)
    weekly = charts.weekly_chart(
        view, labels, texts["console_chart_weekly_title"],
        texts["console_chart_weekly_desc"].format(total=sum(view.totals.values())),
        texts["console_chart_week_of"])
    on_time = charts.on_time_chart(
        view, texts["months"], texts["console_chart_on_time_title"],
        texts["console_chart_on_time_desc"].format(kept=view.answered_on_time,
                                                   answered=view.answered),
        texts["console_chart_none"])
    share = round(100 * view.answered_on_time / view.answered) if view.answered else None
    return console.render(request, "overview.html", {
        "view": view, "labels": labels, "colours": charts.colours(list(view.per_week)),
        "weekly_svg": weekly, "on_time_svg": on_time, "share": share, "today": today,
    }, member=member, nav="overview")


def _matches(record: RequestRecord, query: str) -> bool:
    """Reference (any case, with or without dashes), name or e-mail contain the query."""
    needle = query.casefold().strip()
    compact = needle.replace("-", "").replace(" ", "")
    reference = record.reference.casefold().replace("-", "")
    canonical = normalise_reference(query)
    return bool(
        (canonical and canonical == record.reference)
        or (compact and compact in reference)
        or needle in record.name.casefold()
        or needle in record.email.casefold()
    )


@signed_in
async def list_page(request: Request, console: Console, member: Member) -> Response:
    params = request.query_params
    status = params.get("status") or "open"
    status = status if status in FILTER_STATUSES else "open"
    request_type = params.get("type") or ""
    request_type = request_type if console.site.right(request_type) else ""
    due = params.get("due") or ""
    due = due if due in DUE_FILTERS else ""
    query = one_line(params.get("q") or "")[:200]
    try:
        page = max(1, int(params.get("page") or 1))
    except ValueError:
        page = 1
    statuses: tuple[str, ...] | None = {
        "open": OPEN, "closed": CLOSED, "all": None}.get(status, (status,))
    store = _store(request)
    records = await in_time(request, lambda: store.list_requests(
        statuses=statuses, request_type=request_type or None))
    today = _today(console)
    if due == "overdue":
        records = [r for r in records if r.overdue(today)]
    elif due == "week":
        records = [r for r in records
                   if r.is_open and r.due_at <= today + dt.timedelta(days=6)]
    if query:
        records = [r for r in records if _matches(r, query)]
        # Looking people up by name or address is itself recorded (GDPR Art. 5(2)):
        # which requests it found, not the words searched for (they may name someone
        # who has none, and the register's own events outlive every request).
        await in_time(request, as_actor(_actor(member), store.register_event),
                               "register_searched", _now(),
                               {"matches": len(records),
                                 "references": [r.reference for r in records[:100]]})
    # Overdue first, then by due date: what needs doing comes first.
    records.sort(key=lambda r: (not r.overdue(today), r.due_at, r.submitted_at))
    pages = max(1, math.ceil(len(records) / PAGE_SIZE))
    page = min(page, pages)
    shown = records[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    filters = {"status": status, "type": request_type, "due": due, "q": query}
    lang = console.language(member)
    return console.render(request, "list.html", {
        "records": shown, "count": len(records), "page": page, "pages": pages,
        "filters": filters, "statuses": FILTER_STATUSES, "dues": DUE_FILTERS,
        "labels": _type_labels(console, lang), "today": today,
        "page_url": lambda n: _list_url(filters, n),
    }, member=member, nav="requests")


def _list_url(filters: dict[str, str], page: int) -> str:
    from urllib.parse import urlencode

    query = {k: v for k, v in filters.items() if v}
    query["page"] = str(page)
    return "/staff/requests?" + urlencode(query)


# -- one request -----------------------------------------------------------------------


def _policy_text(console: Console, record: RequestRecord) -> PolicyText | None:
    lang = record.policy_language if record.policy_language in console.site.language_codes \
        else console.site.default_language
    return console.web.policy.find(lang, record.policy_version)


async def _request_context(request: Request, console: Console, member: Member,
                           record: RequestRecord) -> dict[str, Any]:
    store = _store(request)
    events = await in_time(request, store.events, record.reference)
    messages = await in_time(request, store.messages, record.reference)
    right = console.site.right(record.request_type)
    lang = console.language(member)
    policy = _policy_text(console, record)
    return {
        "record": record, "events": events, "messages": messages,
        "right_label": right.label.get(lang, right.id) if right else record.request_type,
        "article": right.article if right else "?",
        "details": plain_text(record.details.replace("\r\n", "\n")),
        "name": one_line(record.name), "email": record.email,
        "phone": one_line(record.phone or ""), "order_number": one_line(record.order_number or ""),
        "close_reason": plain_text(record.close_reason or ""),
        "policy_url": policy_url(record, console.site, console.settings),
        "policy_effective": policy.effective if policy else None,
        "policy_matches": policy is not None and policy.sha256 == record.policy_sha256,
        "today": _today(console), "max_months": MAX_EXTENSION_MONTHS,
        "can_act": record.is_open, "unconfirmed": record.status in (UNVERIFIED, DISCARDED),
        "failed": [m for m in messages if m.status == "failed"],
        "detail_text": _detail_text,
        "answer_files": await in_time(request,
            AnswerFiles(store, console.settings).files, record.reference),
        "question": await in_time(request, FollowUp(store).open_question, record.reference),
        "files_on": console.settings.files_key is not None,
        "max_mb": console.settings.answer_file_max_bytes // 1_000_000,
        "now": _now(),
    }


def _detail_text(detail: dict[str, Any] | None) -> str:
    if not detail:
        return ""
    shown = {k: v for k, v in detail.items() if k not in ("by", "via")}
    return one_line(", ".join(f"{k}={v}" for k, v in shown.items()))[:400]


@signed_in
async def request_page(request: Request, console: Console, member: Member) -> Response:
    reference = request.path_params["reference"]
    now = _now()
    # Shown to a staff member: recorded, naming them (GDPR Art. 5(2)).
    record = await in_time(request, as_actor(_actor(member), _store(request).record_view),
                                    reference, now)
    if record.reference != reference:
        return RedirectResponse(f"/staff/requests/{record.reference}", status_code=303,
                                headers=NO_STORE)
    context = await _request_context(request, console, member, record)
    done = request.query_params.get("done")
    context["done"] = done if done in DONE_MESSAGES else None
    context["note_error"] = request.query_params.get("error") == "note"
    return console.render(request, "request.html", context, member=member, nav="requests")


async def _record(request: Request) -> RequestRecord:
    record = await in_time(request, _store(request).get, request.path_params["reference"])
    if record is None:
        raise UnknownRequest(request.path_params["reference"])
    return record


def _seal(console: Console, *parts: object) -> str:
    """A MAC of what a preview showed: click 2 does exactly what click 1 previewed, and a
    reason edited after the preview is previewed again instead of being sent unseen."""
    text = "\x1f".join(str(p) for p in parts)
    return hmac.new(console.settings.secret_key.encode(), f"staff-preview:{text}".encode(),
                    hashlib.sha256).hexdigest()


def _previewed(console: Console, data: Any, *parts: object) -> bool:
    return data.get("step") == "confirm" and hmac.compare_digest(
        str(data.get("previewed") or ""), _seal(console, *parts))


async def _act(request: Request, member: Member, action: Callable[..., Any],
               *args: object) -> bool:
    """A previewed action, done as the member and its e-mail sent at once; False when the
    request is no longer open (someone else got there first)."""
    try:
        await in_time(request, as_actor(_actor(member), action), *args)
    except NotAllowed:
        return False
    request.state.worker.wake(urgent=True)
    return True


def _done(reference: str, done: str, anchor: str = "") -> RedirectResponse:
    """Back to the request's page, which says what was done."""
    return RedirectResponse(f"/staff/requests/{reference}?done={done}{anchor}",
                            status_code=303, headers=NO_STORE)


def _reason(data: Any) -> str:
    values = data.getlist("reason")
    text = values[0] if len(values) == 1 else ""
    return plain_text(text.replace("\r\n", "\n")).strip()[:MAX_REASON]


@signed_in
async def extend_action(request: Request, console: Console, member: Member) -> Response:
    """Click 1 ("step=preview"): the rules, the new date and the customer's e-mail.
    Click 2 ("step=confirm"): done, recorded, e-mailed."""
    data = await _form(request)
    record = await _record(request)
    try:
        months = int(data.get("months") or 1)
    except ValueError:
        months = 0
    months = months if months in range(1, MAX_EXTENSION_MONTHS + 1) else 1
    reason = _reason(data)
    now = _now()
    plan = plan_extension(record, months, _today(console))
    problem = plan.refusal or (None if reason else "no_reason")
    if problem is None and _previewed(console, data, "extend", record.reference, months, reason):
        if await _act(request, member, _store(request).extend,
                      record.reference, months, reason, now):
            return _done(record.reference, "extended")
        record = await _record(request)
        plan = plan_extension(record, months, _today(console))
        problem = plan.refusal or "not_open"
    mail = None
    if problem is None:
        mail = preview_mail("extend", record, extension_payload(plan, reason),
                            console.settings, now)
    return console.render(request, "extend.html", {
        "record": record, "plan": plan, "reason": reason, "months": months, "mail": mail,
        "previewed": _seal(console, "extend", record.reference, months, reason),
        "problem": problem, "max_months": MAX_EXTENSION_MONTHS,
    }, member=member, nav="requests", status=200 if problem in (None, "no_reason") else 409)


@signed_in
async def close_action(request: Request, console: Console, member: Member) -> Response:
    """Click 1: the answer's e-mail (a refusal with the GDPR Art. 12(4) notice). Click 2: done."""
    data = await _form(request)
    record = await _record(request)
    outcome = data.get("outcome") or ""
    outcome = outcome if outcome in CLOSED else ""
    reason = _reason(data)
    now = _now()
    problem = None if record.is_open else "not_open"
    if problem is None and not outcome:
        problem = "no_outcome"
    if problem is None and not reason:
        problem = "no_reason"
    if problem is None and _previewed(console, data, "close", record.reference, outcome, reason):
        if await _act(request, member, _store(request).close_request,
                      record.reference, outcome, reason, now):
            return _done(record.reference, "closed")
        problem = "not_open"
    mail = None
    if problem is None:
        mail = preview_mail("close", record, close_payload(record, outcome, reason, now),
                            console.settings, now)
    return console.render(request, "close.html", {
        "record": record, "outcome": outcome, "reason": reason, "mail": mail,
        "previewed": _seal(console, "close", record.reference, outcome, reason),
        "problem": problem, "outcomes": CLOSED,
    }, member=member, nav="requests", status=409 if problem == "not_open" else 200)


@signed_in
async def ask_action(request: Request, console: Console, member: Member) -> Response:
    """Click 1: the e-mail asking the customer (GDPR Art. 12(6)). Click 2: asked."""
    data = await _form(request)
    record = await _record(request)
    question = _reason(data)
    now = _now()
    problem = None if record.is_open else "not_open"
    if problem is None and not question:
        problem = "no_reason"
    if problem is None and _previewed(console, data, "ask", record.reference, question):
        if await _act(request, member, FollowUp(_store(request)).ask,
                      record.reference, question, now):
            return _done(record.reference, "asked")
        problem = "not_open"
    mail = None
    if problem is None:
        mail = preview_mail("info", record, {"question": question}, console.settings, now)
    return console.render(request, "ask.html", {
        "record": record, "question": question, "mail": mail, "problem": problem,
        "previewed": _seal(console, "ask", record.reference, question),
    }, member=member, nav="requests", status=409 if problem == "not_open" else 200)


def _files_json(files: list[StoredFile]) -> str:
    return json.dumps([dataclasses.asdict(f) for f in files], ensure_ascii=False,
                      sort_keys=True)


def _carried_files(console: Console, data: Any, reference: str) -> list[StoredFile]:
    """The files a preview page carries: only as we listed them (sealed by our MAC)."""
    text = str(data.get("files") or "[]")
    if not hmac.compare_digest(str(data.get("files_seal") or ""),
                               _seal(console, "answer-files", reference, text)):
        return []
    try:
        return [StoredFile(**item) for item in json.loads(text)]
    except (TypeError, ValueError):
        return []


@signed_in
async def answer_action(request: Request, console: Console, member: Member) -> Response:
    """Click 1 (a multipart upload): the files are sealed as they arrive, and the page shows
    them with the "your answer is ready" e-mail. Click 2: the request is answered."""
    settings = console.settings
    record = await _record(request)
    problem: str | None = None
    file_error: str | None = None
    files: list[StoredFile] = []
    data: Any = {}
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        try:
            settings.require_files_key()
            data, files = await read_upload(request, settings)
        except SettingsError:
            problem = "no_key"
        except AnswerFileError as exc:
            problem, file_error = "file", exc.key
        else:
            try:
                check_csrf(request, settings, data.getlist(CSRF_FIELD))
            except WebError:
                answer_files.discard(settings, files)
                raise
        if problem is not None:
            # Nothing was read as a form: the CSRF field is checked on the next click.
            return console.render(request, "answer.html", {
                "record": record, "message": "", "files": [], "mail": None,
                "problem": problem, "file_error": file_error, "previewed": "",
                "files_json": "[]", "files_seal": "",
                "max_mb": settings.answer_file_max_bytes // 1_000_000,
            }, member=member, nav="requests", status=400)
    else:
        data = await _form(request)
        files = _carried_files(console, data, record.reference)
    message = _reason(data)
    now = _now()
    files_json = _files_json(files)
    if not record.is_open:
        problem = "not_open"
    elif not files:
        problem = "no_files"
    elif not message:
        problem = "no_reason"
    if problem is None and _previewed(console, data, "answer", record.reference, message,
                                      files_json):
        if not all((settings.answers_dir / f.stored_as).is_file() for f in files):
            problem = "files_gone"
        elif await _act(request, member, AnswerFiles(_store(request), settings).answer,
                        record.reference, message, files, now):
            return _done(record.reference, "answered")
        else:
            problem = "not_open"
    mail = None
    if problem is None:
        until = now + dt.timedelta(days=settings.answer_files_days)
        mail = preview_mail("ready", record, {
            "files": [dataclasses.asdict(f) for f in files],
            "files_until": until.isoformat()}, settings, now)
    return console.render(request, "answer.html", {
        "record": record, "message": message, "files": files, "mail": mail,
        "problem": problem, "file_error": file_error,
        "previewed": _seal(console, "answer", record.reference, message, files_json),
        "files_json": files_json,
        "files_seal": _seal(console, "answer-files", record.reference, files_json),
        "max_mb": settings.answer_file_max_bytes // 1_000_000,
    }, member=member, nav="requests", status=409 if problem == "not_open" else 200)


@signed_in
async def retry_action(request: Request, console: Console, member: Member) -> Response:
    await _form(request)
    record = await _record(request)
    count = await in_time(request, as_actor(_actor(member), _store(request).retry_failed),
                                   record.reference, _now())
    if count:
        request.state.worker.wake(urgent=True)
    return _done(record.reference, "retried")


@signed_in
async def note_action(request: Request, console: Console, member: Member) -> Response:
    data = await _form(request)
    record = await _record(request)
    text = _reason(data) if data.getlist("reason") else ""
    if not text:
        return RedirectResponse(f"/staff/requests/{record.reference}?error=note#note",
                                status_code=303, headers=NO_STORE)
    # Internal: an event only, never an outbox row, so it is never e-mailed.
    await in_time(request, as_actor(_actor(member), _store(request).add_note),
                           record.reference, text, _now())
    return _done(record.reference, "noted", "#history")


# -- export, re-asking the passkey --------------------------------------------------------


@signed_in
async def export_page(request: Request, console: Console, member: Member) -> Response:
    return console.render(request, "export.html", {}, member=member, nav="export")


@signed_in
async def export_options(request: Request, console: Console, member: Member) -> Response:
    await _json(request)
    members = _members(request)
    allow = await in_time(request, members.credential_ids, member.id)
    options, challenge = console.ceremonies.authentication_options(allow)
    await in_time(request, members.new_challenge, challenge, "export", member.id, _now())
    return JSONResponse({"options": json.loads(options)}, headers=NO_STORE)


@signed_in
async def export_download(request: Request, console: Console, member: Member) -> Response:
    """The register as a file, only after the member's own passkey answered just now."""
    data = await _json(request)
    lang = console.language(member)
    members = _members(request)
    client = _client(request)
    await request.state.limiter.check(SIGN_IN_FAILURES, "staff-sign-in", client)
    fmt = data.get("format") if data.get("format") in ("csv", "json") else "csv"
    now = _now()
    try:
        _, challenge, credential_id = parse_credential(await request.body())
        owner = await in_time(request, members.take_challenge, challenge, "export", now)
        passkey = await in_time(request, members.passkey, credential_id)
        if owner != member.id or passkey is None or passkey.member.id != member.id:
            raise PasskeyError("not this member's passkey")
        count = console.ceremonies.verify_authentication(data["credential"], passkey, challenge)
    except (PasskeyError, ChallengeInvalid):
        await request.state.limiter.count(SIGN_IN_FAILURES, "staff-sign-in", client)
        return _json_error(console, lang, "console_export_failed", 400)
    await in_time(request, members.used, credential_id, count, now)
    store = _store(request)
    entries = await in_time(request, register_entries, store, console.site, console.settings,
                                     _today(console))
    await in_time(request, as_actor(_actor(member), store.register_event),
                           "register_exported", now, {"format": fmt, "requests": len(entries)})
    text = register_text(entries, fmt, now)
    name = f"register-{now.astimezone(RIGA).date().isoformat()}.{fmt}"
    media = "text/csv" if fmt == "csv" else "application/json"
    return Response(text.encode("utf-8"), media_type=f"{media}; charset=utf-8", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})


# -- the routes --------------------------------------------------------------------------


def routes(route: Callable[[str, Any, list[str]], list[BaseRoute]]) -> list[BaseRoute]:
    """The console's routes; `route` is app.py's (a 405 that names the methods)."""
    get, post = ["GET", "HEAD"], ["POST"]
    return [
        *route("/staff/", overview_page, get),
        *route("/staff/sign-in", sign_in_page, get),
        *route("/staff/sign-in/options", sign_in_options, post),
        *route("/staff/sign-in/verify", sign_in, post),
        *route("/staff/sign-out", sign_out, post),
        *route("/staff/enrol/{token}", enrol_page, get),
        *route("/staff/enrol/{token}/options", enrol_options, post),
        *route("/staff/enrol/{token}/verify", enrol, post),
        *route("/staff/requests", list_page, get),
        *route("/staff/requests/{reference}", request_page, get),
        *route("/staff/requests/{reference}/extend", extend_action, post),
        *route("/staff/requests/{reference}/close", close_action, post),
        *route("/staff/requests/{reference}/retry", retry_action, post),
        *route("/staff/requests/{reference}/note", note_action, post),
        *route("/staff/requests/{reference}/ask", ask_action, post),
        *route("/staff/requests/{reference}/answer", answer_action, post),
        *route("/staff/export", export_page, get),
        *route("/staff/export/options", export_options, post),
        *route("/staff/export/download", export_download, post),
        Mount("/staff/assets", StaticFiles(directory=HERE / "static"), name="console-assets"),
        Route("/staff", _to_console, methods=["GET", "HEAD"]),
    ]


async def _to_console(request: Request) -> Response:
    return RedirectResponse("/staff/", status_code=308)
