"""The request's status page: /request/status/<token> (and each language's twin).

The acknowledgement e-mail links here. The token is signed and names the
request and its random status key (followup.py), so it is long-lived yet
dies with the request. The page shows only what the customer typed and what
we did: no name, no address. Opening it changes nothing; every change is a
same-origin POST with the page's CSRF token:

- withdraw (a page that asks first, then the button);
- reply to the question staff asked (GDPR Art. 12(6));
- ask for a download code, enter it, download the answer's files. The link
  alone opens no file: the code goes to the request's address at that moment
  (answer_files.py), so a forwarded or leaked link is not enough.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import quote

from limits import parse
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse

from form_service import answer_files
from form_service.answer_files import GRANT_TTL, AnswerFiles, FileInfo
from form_service.customer.formdata import read_form
from form_service.deadlines import RIGA
from form_service.delivery.emails import policy_url
from form_service.followup import MAX_REPLY, FollowUp
from form_service.records import OPEN, WITHDRAWN, NotAllowed, RequestRecord
from form_service.sealed import SealedFileError
from form_service.tokens import TokenError, make_token, read_token
from form_service.web.context import WebContext, web_context
from form_service.web.deadline import in_time
from form_service.web.errors import LinkNotFound, WebError
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

log = logging.getLogger(__name__)
_FOREVER = 100 * 365 * 24 * 3600
# Codes a request may be sent, and a client may ask for, per hour: enough for a person
# who mistypes, too few to fill someone's inbox.
CODES_PER_REQUEST = parse("5/hour")
CODES_PER_CLIENT = parse("20/hour")
# What the timeline shows the customer: what happened to their request, in our words.
TIMELINE = ("created", "verified", "extended", "info_requested", "info_replied", "closed",
            "withdrawn", "downloaded", "files_deleted")
DONE_MESSAGES = ("withdrawn", "replied", "code_sent", "unlocked")


class FileDamaged(WebError):
    """Raised when a sealed answer file fails its check: refused, never served."""

    status = 500
    key = "status_error_file_damaged"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _grant_cookie(web: WebContext) -> str:
    # RFC 6265bis §4.1.3.2: "__Host-" binds the cookie to this host, Secure and Path=/.
    return "__Host-download" if web.settings.https else "download"


async def _record(request: Request, web: WebContext) -> RequestRecord:
    """The request the status link names, if the link is genuine and not revoked."""
    try:
        payload = read_token(web.settings.secret_key, "status", request.path_params["token"],
                             _FOREVER)
        reference, key = str(payload["ref"]), str(payload["k"])
    except (TokenError, KeyError):
        raise LinkNotFound() from None
    record = await in_time(request, FollowUp(request.state.store).by_status_key,
                                    reference, key)
    if record is None:
        # Purged (kept no longer than POLICY_RETENTION_DAYS), or a key that was changed.
        raise LinkNotFound(key="status_error_gone")
    return record


def _base_path(request: Request) -> str:
    lang_prefix = request.url.path.split("/request/status/", 1)[0]
    return f"{lang_prefix}/request/status/{request.path_params['token']}"


def _files(request: Request, web: WebContext) -> AnswerFiles:
    return AnswerFiles(request.state.store, web.settings)


async def _granted(request: Request, web: WebContext, record: RequestRecord) -> bool:
    value = request.cookies.get(_grant_cookie(web))
    if not value:
        return False
    try:
        payload = read_token(web.settings.secret_key, "download", value,
                             int(GRANT_TTL.total_seconds()))
        if payload.get("ref") != record.reference:
            return False
        code_id = int(payload["code"])
    except (TokenError, KeyError, TypeError, ValueError):
        return False
    return bool(await in_time(request, _files(request, web).granted, record.reference,
                                       code_id, _now()))


def _timeline(events: list[Any], texts: dict[str, Any]) -> list[dict[str, Any]]:
    shown = []
    for event in events:
        if event.kind not in TIMELINE:
            continue
        detail = event.detail or {}
        kind = event.kind
        if kind == "closed":
            kind = f"closed_{detail.get('outcome', 'done')}"
        shown.append({
            "kind": kind,
            "when": _when(texts, event.at),
            "iso": event.at.isoformat(),
            "reason": detail.get("reason") or detail.get("question") or "",
            "file": detail.get("file") or "",
            "due": format_date(texts, dt.date.fromisoformat(detail["due_at"]))
            if kind == "extended" and detail.get("due_at") else "",
        })
    return shown


async def status_page(request: Request, *, error: str | None = None, status: int = 200,
                      typed_reply: str = "") -> Response:
    """GET/HEAD: where the request stands. Changes nothing."""
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    texts = dict(texts_of(web.site, lang))
    store = request.state.store
    events = await in_time(request, store.events, record.reference)
    question = await in_time(request, FollowUp(store).open_question, record.reference)
    files = await in_time(request, _files(request, web).files, record.reference)
    now = _now()
    right = web.site.right(record.request_type)
    policy = web.policy.find(record.policy_language, record.policy_version)
    extensions = [e.detail or {} for e in events if e.kind == "extended"]
    live = [f for f in files if f.available(now)]
    granted = bool(live) and await _granted(request, web, record)
    done = request.query_params.get("done")
    cookie = csrf_cookie_value(request, web.settings)
    response = web.pages.render(request.scope, "status.html", {
        "record": record,
        "base": _base_path(request),
        "request_type": right.label.get(lang, right.id) if right else record.request_type,
        "article": right.article if right else "",
        "details": record.details,
        "policy_url": policy_url(record, web.site, web.settings),
        "policy_effective": format_date(texts, policy.effective) if policy else "",
        "date": lambda day: format_date(texts, day),
        "when": lambda moment: _when(texts, moment),
        "extensions": [{"reason": x.get("reason", ""),
                        "due": format_date(texts, dt.date.fromisoformat(x["due_at"]))}
                       for x in extensions if x.get("due_at")],
        "state": _state(record),
        "question": question if record.status in OPEN else None,
        "files": files, "live": live, "granted": granted,
        "gone": bool(files) and not live,
        "files_until": _day(texts, min(f.expires_at for f in live)) if live else "",
        "gone_on": _day(texts, files[0].deleted_at or files[0].expires_at) if files else "",
        "size": lambda n: _size(texts, n),
        "timeline": _timeline(events, texts),
        "done": done if done in DONE_MESSAGES else None,
        "error": error, "typed_reply": typed_reply, "max_reply": MAX_REPLY,
        "can_withdraw": record.status in OPEN,
        "csrf_field": CSRF_FIELD,
        "csrf_value": csrf_field_value(web.settings, cookie),
        "form_url": f"{web.site.prefix(lang)}request/?type={record.request_type}",
    }, status=status, lang=lang)
    set_csrf_cookie(response, web.settings, cookie)
    return response


def _state(record: RequestRecord) -> str:
    return "open" if record.status in OPEN else record.status


def _day(texts: dict[str, Any], moment: dt.datetime) -> str:
    return format_date(texts, moment.astimezone(RIGA).date())


def _when(texts: dict[str, Any], moment: dt.datetime | None) -> str:
    if moment is None:
        return "—"
    local = moment.astimezone(RIGA)
    return f"{format_date(texts, local.date())} {local:%H:%M}"


def _size(texts: dict[str, Any], n: int) -> str:
    if n >= 1_000_000:
        return str(texts["status_size_mb"]).format(n=f"{n / 1_000_000:.1f}")
    return str(texts["status_size_kb"]).format(n=max(1, round(n / 1000)))


async def _post(request: Request, web: WebContext, lang: str) -> Any:
    check_same_origin(request, web.settings)
    data = await read_form(request)
    check_csrf(request, web.settings, data.getlist(CSRF_FIELD), lang=lang,
               key="status_error_csrf")
    return data


def _back(request: Request, done: str, anchor: str = "") -> Response:
    return RedirectResponse(f"{_base_path(request)}?done={done}{anchor}", status_code=303,
                            headers=NO_STORE)


async def withdraw(request: Request) -> Response:
    """GET: a page that asks first (a link scanner only opens it). POST: withdrawn."""
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    if request.method in ("GET", "HEAD"):
        cookie = csrf_cookie_value(request, web.settings)
        right = web.site.right(record.request_type)
        response = web.pages.render(request.scope, "status_withdraw.html", {
            "record": record, "base": _base_path(request),
            "request_type": right.label.get(lang, right.id) if right else record.request_type,
            "can_withdraw": record.status in OPEN,
            "csrf_field": CSRF_FIELD, "csrf_value": csrf_field_value(web.settings, cookie),
        }, lang=lang)
        set_csrf_cookie(response, web.settings, cookie)
        return response
    await _post(request, web, lang)
    if record.status not in OPEN and record.status != WITHDRAWN:
        return await status_page(request, error="status_error_not_open", status=409)
    try:
        await in_time(request, FollowUp(request.state.store).withdraw, record.reference,
                               _now())
    except NotAllowed:
        return await status_page(request, error="status_error_not_open", status=409)
    request.state.worker.wake(urgent=True)
    return _back(request, "withdrawn")


async def reply(request: Request) -> Response:
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    data = await _post(request, web, lang)
    values = data.getlist("reply")
    text = values[0] if len(values) == 1 else ""
    if len(text) > MAX_REPLY:
        return await status_page(request, error="status_error_reply_long", status=400,
                                 typed_reply=text[:MAX_REPLY])
    if not text.strip():
        return await status_page(request, error="status_error_reply_empty", status=400)
    try:
        await in_time(request, FollowUp(request.state.store).reply, record.reference, text,
                               _now())
    except NotAllowed:
        return await status_page(request, error="status_error_no_question", status=409)
    request.state.worker.wake(urgent=True)
    return _back(request, "replied")


async def send_code(request: Request) -> Response:
    """A fresh code to the request's address, limited per request and per client."""
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    await _post(request, web, lang)
    limiter = request.state.limiter
    peer = request.client.host if request.client else None
    client = client_address(peer, request.headers.getlist("x-forwarded-for"), web.proxies)
    try:
        await limiter.check(CODES_PER_REQUEST, "status-code", record.reference)
        await limiter.check(CODES_PER_CLIENT, "status-code-ip", client)
    except WebError as exc:
        exc.lang = lang
        raise
    try:
        await in_time(request, _files(request, web).send_code, record.reference, _now())
    except NotAllowed:
        return await status_page(request, error="status_error_no_files", status=409)
    await limiter.count(CODES_PER_REQUEST, "status-code", record.reference)
    await limiter.count(CODES_PER_CLIENT, "status-code-ip", client)
    request.state.worker.wake(urgent=True)
    return _back(request, "code_sent", "#files")


async def unlock(request: Request) -> Response:
    """The code typed in: downloads open for GRANT_TTL in this browser (a cookie)."""
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    data = await _post(request, web, lang)
    values = data.getlist("code")
    code = "".join((values[0] if len(values) == 1 else "").split())
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return await status_page(request, error="status_error_code_format", status=400)
    result = await in_time(request, _files(request, web).enter_code, record.reference, code,
                                    _now())
    if result.outcome != "accepted":
        key = f"status_error_code_{result.outcome}"
        return await status_page(request, error=key, status=400 if result.outcome == "wrong"
                                 else 409)
    response = _back(request, "unlocked", "#files")
    response.set_cookie(
        _grant_cookie(web),
        make_token(web.settings.secret_key, "download",
                   {"ref": record.reference, "code": result.code_id}),
        max_age=int(GRANT_TTL.total_seconds()), path="/", secure=web.settings.https,
        httponly=True, samesite="strict")
    return response


async def download(request: Request) -> Response:
    """One answer file, decrypted as it is sent; only with this browser's code grant."""
    web = web_context(request)
    lang = language_of_path(web.site, request.url.path)
    record = await _record(request, web)
    await _post(request, web, lang)
    try:
        file_id = int(request.path_params["file_id"])
    except ValueError:
        raise LinkNotFound(lang=lang) from None
    files = await in_time(request, _files(request, web).files, record.reference)
    found = [f for f in files if f.id == file_id]
    if not found:
        raise LinkNotFound(lang=lang)
    info = found[0]
    if not info.available(_now()):
        return await status_page(request, error="status_error_files_gone", status=410)
    if not await _granted(request, web, record):
        return await status_page(request, error="status_error_code_needed", status=403)
    chunks = await _open(request, web, record, info, lang)
    await in_time(request, _files(request, web).downloaded, record.reference, info, _now())
    return StreamingResponse(chunks, media_type=info.media_type, headers={
        **NO_STORE,
        "Content-Length": str(info.size),
        # RFC 6266 and RFC 8187: the name in UTF-8, with a plain fallback.
        "Content-Disposition": _disposition(info.name),
    })


async def _open(request: Request, web: WebContext, record: RequestRecord, info: FileInfo,
                lang: str) -> Any:
    try:
        return await run_in_threadpool(answer_files.stream, web.settings, info)
    except (SealedFileError, OSError) as exc:
        # Never served: the customer sees a plain page, staff a log line and an event.
        log.error("answer file %s of %s refused: %s", info.id, record.reference, exc)
        raise FileDamaged(lang=lang) from None


def _disposition(name: str) -> str:
    fallback = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_"
                       for c in name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
