"""The staff console through its HTTP interface (a real app, a real SQLite database, passkeys
made in software and checked by the `webauthn` package): sign-in, sessions, refusals,
every page and every action, and the events that name who did what."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest
from console_support import BASE_URL, Console, console, console_settings
from delivery_support import new_request
from sqlalchemy import text
from web_support import make_settings

from form_service import db
from form_service.records import RequestRecord
from form_service.settings import SettingsError, load_settings
from form_service.web.logs import REDACTED, redact

ANNA = "anna@pulkstenu-outlets.lv"
NOW = dt.datetime.now(dt.UTC)


def _request(c: Console, days_ago: float = 0, *, verified: bool = True,
             **changes: object) -> RequestRecord:
    at = NOW - dt.timedelta(days=days_ago, minutes=10)
    record, _ = c.store.create_request(new_request(submitted_at=at, **changes))
    if verified:
        result = c.store.verify(record.reference, at + dt.timedelta(minutes=5))
        assert result is not None
        record = result[0]
    return record


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field"
    return found[1]


def _previewed(html: str) -> str:
    found = re.search(r'name="previewed" value="([0-9a-f]{64})"', html)
    assert found, "no preview seal"
    return found[1]


@pytest.fixture
def c(tmp_path: Path):  # type: ignore[no-untyped-def]
    with console(tmp_path) as running:
        yield running


# -- off, on, and who may come in ----------------------------------------------------------


def test_the_console_is_off_unless_asked_for(tmp_path: Path) -> None:
    """Without POLICY_STAFF_CONSOLE=on, /staff/ is not there (404), nor its sign-in."""
    from web_support import client_for

    with client_for(make_settings(tmp_path)) as client:
        assert client.get("/staff/").status_code == 404
        assert client.get("/staff/sign-in").status_code == 404


@pytest.mark.parametrize("base_url", ["http://privatums.pulkstenu-outlets.lv",
                                      "http://127.0.0.1:8000", "https://192.0.2.7"])
def test_the_console_needs_https_or_localhost(tmp_path: Path, base_url: str) -> None:
    """Passkeys need a secure context and a domain: plain http or an IP address fails fast."""
    with pytest.raises(SettingsError, match="POLICY_STAFF_CONSOLE=on needs POLICY_BASE_URL"):
        load_settings({"POLICY_STAFF_CONSOLE": "on", "POLICY_BASE_URL": base_url,
                       "POLICY_SECRET_KEY": "x" * 10 + "abcdefghijklmnopqrstuvwxyz0123456789",
                       "POLICY_VAR_DIR": str(tmp_path)})
    assert console_settings(tmp_path, POLICY_BASE_URL="http://localhost:8000").staff_console


GET_PAGES = ["/staff/", "/staff/requests", "/staff/requests/PO-AAAA-BBBB", "/staff/export"]
POSTS = ["/staff/sign-out", "/staff/requests/PO-AAAA-BBBB/extend",
         "/staff/requests/PO-AAAA-BBBB/close", "/staff/requests/PO-AAAA-BBBB/retry",
         "/staff/requests/PO-AAAA-BBBB/note", "/staff/export/options",
         "/staff/export/download"]


def test_every_console_url_is_refused_without_a_session(c: Console) -> None:
    """Each page sends a visitor without a session to sign in; each action is a 401 page."""
    record = _request(c)
    for path in [*GET_PAGES, f"/staff/requests/{record.reference}"]:
        answer = c.client.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/staff/sign-in"), path
    csrf = c.csrf("/staff/sign-in")
    for path in [*POSTS, f"/staff/requests/{record.reference}/note"]:
        answer = c.client.post(path, data={"csrf_token": csrf, "reason": "x"})
        assert answer.status_code == 401, path
        assert "Lūdzu, piesakieties" in answer.text and record.name not in answer.text
    assert c.store.events(record.reference)[-1].kind == "verified"  # nothing was noted


def test_enrol_then_sign_in_with_the_passkey(c: Console) -> None:
    """The invite's passkey signs in; the session cookie is __Host-, Secure, HttpOnly, Strict."""
    passkey = c.passkey()
    answer = c.enrol(c.invite(), passkey)
    assert answer.json() == {"next": "/staff/"}
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("__Host-staff=") and "Path=/" in cookie
    for attribute in ("Secure", "HttpOnly", "SameSite=strict"):
        assert attribute in cookie
    assert "Domain" not in cookie
    assert c.client.get("/staff/").status_code == 200
    c.client.cookies.clear()
    assert c.client.get("/staff/").status_code == 303
    assert c.sign_in(passkey).status_code == 200
    page = c.client.get("/staff/")
    assert page.status_code == 200 and "Anna Liepa" in page.text
    kinds = [e.kind for e in c.store.register_events()]
    assert kinds[:2] == ["staff_signed_in", "staff_enrolled"]


def test_the_session_token_is_stored_only_as_a_digest(c: Console) -> None:
    """The database holds the SHA-256 of the session and invite tokens, never the tokens."""
    token = c.invite()
    c.enrol(token, c.passkey())
    session = c.client.cookies.get("__Host-staff")
    assert session
    engine = db.create(c.settings.database_url)
    with engine.connect() as conn:
        stored = [r[0] for r in conn.execute(text("SELECT token_hash FROM staff_sessions"))]
        invites = [r[0] for r in conn.execute(text("SELECT token_hash FROM staff_invites"))]
    engine.dispose()
    assert session not in stored and len(stored) == 1 and len(stored[0]) == 64
    assert token not in invites


def test_a_passkey_for_another_site_does_not_sign_in(c: Console) -> None:
    """An answer made on another origin (a phishing page), or by an unknown key, is refused."""
    passkey = c.member()
    c.client.cookies.clear()
    csrf = c.csrf("/staff/sign-in")
    options = c.client.post("/staff/sign-in/options", json={"csrf": csrf}).json()["options"]
    phished = passkey.get(options, origin="https://privatums-pulkstenu-outlets.lv")
    answer = c.client.post("/staff/sign-in/verify", json={"csrf": csrf, "credential": phished})
    # Before sign-in the console speaks the staff language (site.yml: lv).
    assert answer.status_code == 400 and "pieteikties neizdevās" in answer.json()["error"]
    stranger = c.sign_in(c.passkey())
    assert stranger.status_code == 400
    assert "__Host-staff" not in stranger.headers.get("set-cookie", "")
    assert c.client.get("/staff/").status_code == 303


def test_a_signed_challenge_cannot_be_replayed(c: Console) -> None:
    """The same signed answer sent twice signs in once: each challenge is used once."""
    passkey = c.member()
    c.client.cookies.clear()
    csrf = c.csrf("/staff/sign-in")
    options = c.client.post("/staff/sign-in/options", json={"csrf": csrf}).json()["options"]
    credential = passkey.get(options)
    first = c.client.post("/staff/sign-in/verify", json={"csrf": csrf, "credential": credential})
    assert first.status_code == 200
    c.client.cookies.delete("__Host-staff")
    again = c.client.post("/staff/sign-in/verify", json={"csrf": csrf, "credential": credential})
    assert again.status_code == 400


def test_failed_sign_ins_are_rate_limited(c: Console) -> None:
    """After 10 failed sign-ins from one address, even the right passkey waits (429)."""
    passkey = c.member()
    c.client.cookies.clear()
    stranger = c.passkey()
    for _ in range(10):
        assert c.sign_in(stranger).status_code == 400
    csrf = c.csrf("/staff/sign-in")
    refused = c.client.post("/staff/sign-in/options", json={"csrf": csrf})
    assert refused.status_code == 429
    assert "pārāk daudz neizdevušos" in refused.json()["error"]
    assert passkey.sign_count == 0  # never asked: the limit answered first


def test_sign_out_ends_the_session(c: Console) -> None:
    """Signing out deletes the session: the old cookie opens nothing any more."""
    c.member()
    session = c.client.cookies.get("__Host-staff")
    answer = c.client.post("/staff/sign-out", data={"csrf_token": c.csrf()})
    assert (answer.status_code, answer.headers["location"]) == (303, "/staff/sign-in?signed-out")
    c.client.cookies.set("__Host-staff", session or "", domain="privatums.pulkstenu-outlets.lv")
    assert c.client.get("/staff/").status_code == 303
    assert c.store.register_events()[0].kind == "staff_signed_out"


def _age_session(c: Console, **delta: float) -> None:
    engine = db.create(c.settings.database_url)
    # The clock now, not at import: the whole suite takes minutes.
    then = (dt.datetime.now(dt.UTC) - dt.timedelta(**delta)).replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(text("UPDATE staff_sessions SET last_seen_at = :seen, created_at = :made"),
                     {"seen": then, "made": then})
    engine.dispose()


def test_a_session_ends_after_30_idle_minutes(c: Console) -> None:
    """A session not used for 30 minutes is over; 29 minutes is fine."""
    c.member()
    _age_session(c, minutes=29)
    assert c.client.get("/staff/").status_code == 200
    _age_session(c, minutes=31)
    assert c.client.get("/staff/").status_code == 303


def test_a_removed_members_session_ends_at_once(c: Console) -> None:
    """Removing a member (policy-site staff remove) signs them out on their next click."""
    c.member()
    assert c.client.get("/staff/requests").status_code == 200
    c.members.remove(ANNA)
    assert c.client.get("/staff/requests").status_code == 303


def test_every_post_needs_our_origin_and_csrf_token(c: Console) -> None:
    """A signed-in member's POST without the CSRF field, or from another origin, is refused."""
    c.member()
    record = _request(c)
    path = f"/staff/requests/{record.reference}/note"
    missing = c.client.post(path, data={"reason": "x"})
    assert missing.status_code == 403 and "Please try again" in missing.text
    foreign = c.client.post(path, data={"csrf_token": c.csrf(), "reason": "x"},
                            headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    options = c.client.post("/staff/export/options", json={"csrf": "forged"})
    assert options.status_code == 403
    assert [e.kind for e in c.store.events(record.reference)] == ["created", "verified"]


def test_pages_are_no_store_under_the_sites_csp(c: Console) -> None:
    """Every console page is Cache-Control: no-store with a CSP that allows only our scripts."""
    c.member()
    record = _request(c)
    pages = ["/staff/", "/staff/requests", f"/staff/requests/{record.reference}",
             "/staff/export", "/staff/sign-in"]
    for path in pages:
        if path == "/staff/sign-in":
            c.client.cookies.clear()
        page = c.client.get(path)
        assert page.headers["cache-control"] == "no-store", path
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        scripts = re.findall(r"<script[^>]*>", page.text)
        assert scripts == ['<script src="/staff/assets/console.js" defer>'], path
    script = c.client.get("/staff/assets/console.js")
    assert script.status_code == 200 and "navigator.credentials" in script.text


# -- what staff see ------------------------------------------------------------------------


def test_the_overview_puts_overdue_first_with_days_late(c: Console) -> None:
    """Overdue requests lead, in red with their days late; due this week follows; SVG charts."""
    c.member()
    late = _request(c, 40)
    soon = _request(c, 27)
    _request(c, 2, request_type="erasure")
    page = c.client.get("/staff/").text
    overdue = page.split('id="late-heading"')[1].split('id="soon-heading"')[0]
    assert late.reference in overdue and soon.reference not in overdue
    days = (NOW.date() - late.due_at).days
    assert re.search(rf'class="console-overdue">{days} days? late<', overdue)
    assert soon.reference in page.split('id="soon-heading"')[1].split('id="open-heading"')[0]
    assert page.count('<svg class="console-chart"') == 2
    weekly = page.split('aria-labelledby="weekly-title weekly-desc"')[1].split("</svg>")[0]
    assert weekly.count("<rect") == 3  # three weeks with a request each
    assert "3 requests in all" in page


def test_the_list_filters_searches_and_pages(c: Console) -> None:
    """Status, type, due and text filters narrow the list; 25 a page with links between."""
    c.member()
    records = [_request(c, i % 5, email=f"klients{i}@example.lv") for i in range(30)]
    closed = _request(c, 1, name="Zane Kalniņa")
    c.store.close_request(closed.reference, "done", "Done.", NOW)
    erasure = _request(c, 1, request_type="erasure")
    page = c.client.get("/staff/requests").text
    assert "31 requests." in page and "Page 1 of 2" in page
    second = c.client.get("/staff/requests?page=2").text
    assert "Page 2 of 2" in second and 'rel="prev"' in second
    shown = set(re.findall(r'href="/staff/requests/(PO-[0-9A-Z-]+)"', page + second))
    assert shown == {r.reference for r in [*records, erasure]}
    only = c.client.get("/staff/requests?type=erasure").text
    assert "1 request." in only and erasure.reference in only
    done = c.client.get("/staff/requests?status=done").text
    assert closed.reference in done and "1 request." in done
    found = c.client.get("/staff/requests", params={"status": "all", "q": "KALNIŅA"}).text
    assert closed.reference in found and "1 request." in found
    by_mail = c.client.get("/staff/requests", params={"q": "klients7@"}).text
    assert records[7].reference in by_mail and "1 request." in by_mail
    by_ref = c.client.get("/staff/requests",
                          params={"q": records[3].reference.lower().replace("-", "")}).text
    assert records[3].reference in by_ref


def test_a_search_is_recorded_with_what_it_found(c: Console) -> None:
    """A text search is an event naming the member and the references found, not the words."""
    c.member()
    record = _request(c, name="Pēteris Ozols")
    c.client.get("/staff/requests", params={"q": "ozols"})
    [event] = [e for e in c.store.register_events() if e.kind == "register_searched"]
    assert event.detail == {"matches": 1, "references": [record.reference], "by": ANNA,
                            "via": "console"}
    assert "ozols" not in json.dumps(event.detail).lower()


def test_a_request_page_shows_everything_and_records_the_view(c: Console) -> None:
    """The requester, the policy evidence with its link, dates, events and messages; the view
    itself becomes an event naming the member."""
    c.member()
    record = _request(c, phone="+371 29999999")
    page = c.client.get(f"/staff/requests/{record.reference.lower()}", follow_redirects=True)
    assert page.status_code == 200
    html = page.text
    for fact in (record.name, record.email, "+371 29999999", "A-1042", record.policy_sha256,
                 f"{BASE_URL}/versions/1.0/", "Lūdzu, atsūtiet visus manus datus.",
                 f"&lt;{record.reference}.ticket@pulkstenu-outlets.lv&gt;",
                 "Extend the time to answer", "Answer and close", "Internal note"):
        assert fact in html, fact
    viewed = c.store.events(record.reference)[-1]
    assert viewed.kind == "viewed" and viewed.detail == {"by": ANNA, "via": "console"}
    assert "viewed" in html and ANNA in html.split('id="history"')[1]


def test_an_unconfirmed_request_offers_no_action(c: Console) -> None:
    """A request its customer has not confirmed shows why nothing can be done (Art. 12(6))."""
    c.member()
    record = _request(c, verified=False)
    html = c.client.get(f"/staff/requests/{record.reference}").text
    assert "has not confirmed this request" in html and "/extend" not in html


def test_extend_is_previewed_then_done(c: Console) -> None:
    """Click 1 shows the Art. 12(3) rules, the new date and the customer's e-mail; click 2 does
    it: new due date, an "extend" e-mail queued, the event naming the member."""
    c.member()
    record = _request(c, 3, language="en")
    path = f"/staff/requests/{record.reference}/extend"
    csrf = c.csrf(f"/staff/requests/{record.reference}")
    preview = c.client.post(path, data={"csrf_token": csrf, "months": "2", "step": "preview",
                                        "reason": "We hold your data in two systems."})
    assert preview.status_code == 200
    assert "GDPR Art. 12(3)" in preview.text and "We hold your data in two systems." in \
        preview.text.split('class="console-mail__body"')[1]
    assert "The e-mail the customer will get" in preview.text
    assert c.store.get(record.reference).due_at == record.due_at  # nothing done yet
    sealed = _previewed(preview.text)
    # A reason changed after the preview is previewed again, not sent unseen.
    edited = c.client.post(path, data={"csrf_token": csrf, "months": "2", "step": "confirm",
                                       "reason": "Something else.", "previewed": sealed})
    assert edited.status_code == 200 and "Something else." in edited.text
    assert c.store.get(record.reference).extended_months == 0
    done = c.client.post(path, data={"csrf_token": csrf, "months": "2", "step": "confirm",
                                     "reason": "We hold your data in two systems.",
                                     "previewed": sealed})
    assert done.headers["location"] == f"/staff/requests/{record.reference}?done=extended"
    after = c.store.get(record.reference)
    assert after is not None and after.extended_months == 2 and after.due_at > record.due_at
    assert [m.kind for m in c.store.messages(record.reference)][-1] == "extend"
    extended = next(e for e in c.store.events(record.reference) if e.kind == "extended")
    assert extended.detail is not None and extended.detail["by"] == ANNA


def test_extend_after_the_first_month_explains_the_rule(c: Console) -> None:
    """Past the first month, the preview says why not (Art. 12(3)) and offers no button."""
    c.member()
    record = _request(c, 40)
    answer = c.client.post(f"/staff/requests/{record.reference}/extend", data={
        "csrf_token": c.csrf(f"/staff/requests/{record.reference}"), "months": "1",
        "reason": "Late.", "step": "confirm"})
    assert answer.status_code == 409
    assert "can no longer be extended" in answer.text and 'value="confirm"' not in answer.text
    assert c.store.get(record.reference).extended_months == 0


def test_a_refusal_previews_the_right_to_complain(c: Console) -> None:
    """Closing as refused shows the Art. 12(4) notice in the e-mail before it is sent."""
    c.member()
    record = _request(c, 1, language="en")
    path = f"/staff/requests/{record.reference}/close"
    csrf = c.csrf(f"/staff/requests/{record.reference}")
    preview = c.client.post(path, data={"csrf_token": csrf, "outcome": "refused",
                                        "reason": "We hold no data about you.", "step": "x"})
    mail = preview.text.split('class="console-mail__body"')[1]
    assert "Data State Inspectorate" in mail and "pasts@dvi.gov.lv" in mail
    assert "We hold no data about you." in mail
    assert c.store.get(record.reference).status == "verified"
    empty = c.client.post(path, data={"csrf_token": csrf, "outcome": "done", "reason": " ",
                                      "step": "confirm"})
    assert "Write the reason" in empty.text and c.store.get(record.reference).status == "verified"
    unseen = c.client.post(path, data={"csrf_token": csrf, "outcome": "done", "step": "confirm",
                                       "reason": "We hold no data about you.",
                                       "previewed": _previewed(preview.text)})
    assert unseen.status_code == 200 and c.store.get(record.reference).status == "verified"
    c.client.post(path, data={"csrf_token": csrf, "outcome": "refused",
                              "reason": "We hold no data about you.", "step": "confirm",
                              "previewed": _previewed(preview.text)})
    assert c.store.get(record.reference).status == "refused"
    assert c.store.messages(record.reference)[-1].kind == "close"


def test_a_failed_message_is_sent_again(c: Console) -> None:
    """A message given up on shows NOT SENT and a button that queues it again, same Message-ID."""
    c.member()
    record = _request(c, verified=False)
    [delivery] = c.store.claim_messages("w", limit=5, now=NOW, lease=dt.timedelta(minutes=5))
    c.store.mark_failed(delivery.id, "w", "550 5.1.1 <recipient>: no such mailbox", NOW)
    page = c.client.get(f"/staff/requests/{record.reference}").text
    assert "NOT SENT" in page and "550 5.1.1" in page
    answer = c.client.post(f"/staff/requests/{record.reference}/retry",
                           data={"csrf_token": _csrf(page)})
    assert answer.headers["location"].endswith("?done=retried")
    [message] = c.store.messages(record.reference)
    assert (message.status, message.message_id) == ("pending", delivery.message_id)
    retried = c.store.events(record.reference)[-1]
    assert retried.kind == "mail_retried" and retried.detail["by"] == ANNA  # type: ignore[index]


def test_a_note_is_recorded_and_never_mailed(c: Console) -> None:
    """An internal note becomes an event naming its author; no message is queued for it."""
    c.member()
    record = _request(c)
    before = c.store.messages(record.reference)
    page = c.client.get(f"/staff/requests/{record.reference}").text
    words = "Klients zvanīja, gaida līdz piektdienai."
    c.client.post(f"/staff/requests/{record.reference}/note",
                  data={"csrf_token": _csrf(page), "reason": words})
    note = c.store.events(record.reference)[-1]
    assert note.kind == "note" and note.detail == {
        "text": words, "by": ANNA, "via": "console"}
    assert c.store.messages(record.reference) == before
    empty = c.client.post(f"/staff/requests/{record.reference}/note",
                          data={"csrf_token": _csrf(page), "reason": ""})
    assert "error=note" in empty.headers["location"]


# -- export -------------------------------------------------------------------------------


def test_the_export_asks_the_passkey_again(c: Console) -> None:
    """The register downloads only with a fresh answer of the member's own passkey; recorded."""
    passkey = c.member()
    _request(c, name="=HYPERLINK(\"x\")")
    csrf = c.csrf("/staff/export")
    bare = c.client.post("/staff/export/download", json={"csrf": csrf, "format": "csv"})
    assert bare.status_code == 400 and "did not confirm the export" in bare.json()["error"]
    options = c.client.post("/staff/export/options", json={"csrf": csrf}).json()["options"]
    assert [a["id"] for a in options["allowCredentials"]] == [passkey.id]
    other = c.passkey()
    other.credential_id = passkey.credential_id  # the same id, another key: a forgery
    forged = c.client.post("/staff/export/download", json={
        "csrf": csrf, "format": "csv", "credential": other.get(options)})
    assert forged.status_code == 400
    options = c.client.post("/staff/export/options", json={"csrf": csrf}).json()["options"]
    answer = c.client.post("/staff/export/download", json={
        "csrf": csrf, "format": "csv", "credential": passkey.get(options)})
    assert answer.status_code == 200
    assert answer.headers["content-disposition"].startswith('attachment; filename="register-')
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert len(rows) == 1 and rows[0]["name"].startswith("'=")
    [event] = [e for e in c.store.register_events() if e.kind == "register_exported"]
    assert event.detail == {"format": "csv", "requests": 1, "by": ANNA, "via": "console"}


def test_the_export_as_json(c: Console) -> None:
    """format=json gives the register as JSON, the exact text kept."""
    passkey = c.member()
    record = _request(c)
    csrf = c.csrf("/staff/export")
    options = c.client.post("/staff/export/options", json={"csrf": csrf}).json()["options"]
    answer = c.client.post("/staff/export/download", json={
        "csrf": csrf, "format": "json", "credential": passkey.get(options)})
    data = answer.json()
    assert [r["reference"] for r in data["requests"]] == [record.reference]


# -- enrolment links, language, logs --------------------------------------------------------


def test_enrolment_links_work_once_and_for_a_day(c: Console) -> None:
    """An unknown link is a 404 page; a used one and one older than 24 h are 410 pages."""
    assert c.client.get("/staff/enrol/not-a-token").status_code == 404
    old = c.invite(at=NOW - dt.timedelta(hours=25))
    expired = c.client.get(f"/staff/enrol/{old}")
    assert expired.status_code == 410 and "derīgums ir beidzies" in expired.text
    token = c.invite()
    c.enrol(token, c.passkey())
    c.client.cookies.clear()
    used = c.client.get(f"/staff/enrol/{token}")
    assert used.status_code == 410 and "jau ir izmantota" in used.text


def test_inviting_again_replaces_a_lost_passkey(c: Console) -> None:
    """A member invited again enrols a new passkey; the lost one no longer signs in."""
    lost = c.member()
    c.client.cookies.clear()
    new = c.passkey()
    assert c.enrol(c.invite(), new).status_code == 200
    c.client.cookies.clear()
    assert c.sign_in(lost).status_code == 400
    assert c.sign_in(new).status_code == 200


def test_the_console_speaks_the_members_language(c: Console) -> None:
    """A member invited in Latvian sees the console in Latvian, with <html lang="lv">."""
    c.member(language="lv")
    page = c.client.get("/staff/").text
    assert '<html lang="lv">' in page and "Pārskats" in page and "Nokavēti" in page


def test_logs_never_hold_an_enrolment_link() -> None:
    """The enrolment token is replaced in every log line, as the customers' link tokens are."""
    assert redact('"GET /staff/enrol/AbC_123-xyz HTTP/1.1" 200') == (
        f'"GET /staff/enrol/{REDACTED} HTTP/1.1" 200')
