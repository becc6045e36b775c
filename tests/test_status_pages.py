"""The request's status page through HTTP (a real app and SQLite database): what it shows,
what opening it changes (nothing), withdrawing, replying, codes and downloads, refusals."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import pytest
from site_tree import ROOT
from starlette.testclient import TestClient
from web_support import (
    client_for,
    confirmation,
    database_path,
    decide,
    event_kinds,
    make_settings,
    open_form,
    stored_request,
    verify_link,
)

from form_service.answer_files import AnswerFiles, seal_file
from form_service.delivery.emails import status_link
from form_service.followup import FollowUp
from form_service.settings import Settings
from form_service.store import Store
from form_service.tokens import make_token
from form_service.web.logs import REDACTED, redact
from form_service.web.ratelimit import RateLimits
from form_service.web.security import csrf_field_value
from site_config.facts import load_site

FILES_KEY = "q6Rz3Yc1S2v9kJ0xWbT4pLmN8aE5uH7dF2gK1sQ0wXo"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Page:
    client: TestClient
    settings: Settings
    store: Store
    reference: str
    path: str

    def get(self, suffix: str = "") -> str:
        answer = self.client.get(self.path + suffix)
        assert answer.status_code == 200, answer.text[:400]
        return answer.text

    def post(self, suffix: str, **fields: str):  # type: ignore[no-untyped-def]
        """A POST as the page's buttons send it: the CSRF field signed for our cookie."""
        self.get()  # sets the CSRF cookie, as opening the page does
        field = csrf_field_value(self.settings, self.client.cookies["csrf"])
        return self.client.post(self.path + suffix, data={"csrf_token": field, **fields})


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    settings = make_settings(tmp_path, POLICY_FILES_KEY=FILES_KEY)
    with client_for(settings) as client:
        yield _confirmed_page(client, settings, "/en/request/")


def _confirmed_page(client: TestClient, settings: Settings, form_path: str,
                    **fields: str) -> Page:
    form = open_form(client, form_path)
    sent = client.post(form_path, data=form.fields(**fields))
    reference = confirmation(sent.headers["location"])["ref"]
    assert decide(client, verify_link(reference)).status_code == 303
    store = Store(settings.database_url)
    record = store.get(reference)
    assert record is not None
    path = status_link(record, settings).removeprefix(settings.base_url)
    return Page(client, settings, store, reference, path)


def _answer(page: Page, tmp_path: Path, body: bytes = b"field,value\nname,Anna\n") -> None:
    csv = tmp_path / "dati.csv"
    csv.write_bytes(body)
    AnswerFiles(page.store, page.settings).answer(
        page.reference, "Your data are in the file.",
        [seal_file(page.settings, csv)], dt.datetime.now(dt.UTC))


def _outbox_code(page: Page) -> str:
    with closing(sqlite3.connect(database_path(page.settings))) as conn:
        payload = conn.execute("SELECT payload FROM outbox WHERE kind = 'code' "
                               "ORDER BY id DESC").fetchone()[0]
    return str(json.loads(payload)["code"])


def test_the_page_shows_the_request_and_nothing_personal_but_what_was_typed(page: Page) -> None:
    """Reference, type, policy version with its SHA-256, dates and timeline; no name, no
    address; never stored by a cache."""
    answer = page.client.get(page.path)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    html = answer.text
    record = page.store.get(page.reference)
    assert record is not None
    for shown in (page.reference, "Access to your personal data", record.policy_sha256,
                  "/en/versions/1.0/", "Answer due by",
                  "you confirmed the request", "Lūdzu, sniedziet kopiju"):
        assert shown in html, shown
    assert "Anna Bērziņa" not in html and "anna@example.lv" not in html
    assert "<script" not in html.split("</head>")[1]


def test_opening_the_page_changes_nothing(page: Page) -> None:
    """GET and HEAD of the page and of the withdrawal page write no event and no message."""
    before = event_kinds(page.settings, page.reference)
    for _ in range(2):
        page.client.get(page.path)
        page.client.head(page.path)
        page.client.get(page.path + "/withdraw")
    assert event_kinds(page.settings, page.reference) == before
    assert stored_request(page.settings, page.reference)["status"] == "verified"


def test_a_forged_or_revoked_link_is_a_plain_404(page: Page) -> None:
    """A token we did not sign, or one whose key is not the request's, finds nothing."""
    forged = make_token("another-secret-key-that-is-long-enough-to-sign-it", "status",
                        {"ref": page.reference, "k": "x"})
    wrong_key = make_token(page.settings.secret_key, "status",
                           {"ref": page.reference, "k": "not-the-key"})
    verify_token = make_token(page.settings.secret_key, "verify", {"ref": page.reference})
    for token in (forged, wrong_key, verify_token, "garbage"):
        answer = page.client.get(f"/en/request/status/{token}")
        assert answer.status_code == 404
        assert page.reference not in answer.text


def test_the_page_exists_in_every_language(tmp_path: Path) -> None:
    """The same link under each language's prefix shows the page in that language."""
    settings = make_settings(tmp_path)
    site = load_site(ROOT)
    with client_for(settings) as client:
        page = _confirmed_page(client, settings, "/request/")
        token = page.path.rsplit("/", 1)[1]
        assert page.path == f"{site.prefix(site.default_language)}request/status/{token}"
        for language in site.languages:
            answer = client.get(f"{site.prefix(language.code)}request/status/{token}")
            assert answer.status_code == 200 and f'lang="{language.code}"' in answer.text


def test_withdrawing_asks_first_then_the_button_withdraws(page: Page) -> None:
    """The withdrawal page's button (same origin, CSRF) withdraws; staff are told."""
    confirm_page = page.get("/withdraw")
    assert "Yes, withdraw my request" in confirm_page
    csrf = _CSRF.search(confirm_page)
    assert csrf
    answer = page.client.post(page.path + "/withdraw", data={"csrf_token": csrf[1]})
    assert answer.status_code == 303
    assert stored_request(page.settings, page.reference)["status"] == "withdrawn"
    assert "withdrawn" in event_kinds(page.settings, page.reference)
    assert [m.kind for m in page.store.messages(page.reference)].count("withdrawn") == 1
    html = page.get()
    assert "You withdrew this request." in html and "/withdraw" not in html


def test_the_buttons_need_our_origin_and_the_csrf_field(page: Page) -> None:
    """Without the CSRF field, or from another origin, nothing is withdrawn."""
    assert page.client.post(page.path + "/withdraw", data={}).status_code == 403
    csrf = _CSRF.search(page.get("/withdraw"))
    assert csrf
    cross = page.client.post(page.path + "/withdraw", data={"csrf_token": csrf[1]},
                             headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert stored_request(page.settings, page.reference)["status"] == "verified"


def test_a_question_shows_a_reply_box_whose_reply_reaches_staff(page: Page) -> None:
    """Staff's question appears with a reply box; the reply is an event and a staff e-mail."""
    assert 'name="reply"' not in page.get()
    FollowUp(page.store).ask(page.reference, "Which shop account is yours?",
                             dt.datetime.now(dt.UTC))
    html = page.get()
    assert "Which shop account is yours?" in html and 'name="reply"' in html
    assert page.post("/reply", reply="   ").status_code == 400
    assert page.post("/reply", reply="x" * 5001).status_code == 400
    assert page.post("/reply", reply="The one with anna@example.lv").status_code == 303
    assert "info_replied" in event_kinds(page.settings, page.reference)
    assert 'name="reply"' not in page.get()
    assert page.post("/reply", reply="again").status_code == 409


def test_files_need_a_fresh_code_and_then_download_byte_for_byte(
        page: Page, tmp_path: Path) -> None:
    """The link alone opens no file; the e-mailed code does, and each download is an event."""
    _answer(page, tmp_path)
    html = page.get()
    assert "dati.csv" in html and "/files/" not in html
    file_id = AnswerFiles(page.store, page.settings).files(page.reference)[0].id
    assert page.post(f"/files/{file_id}").status_code == 403
    assert page.post("/unlock", code="123456").status_code == 409  # no code sent yet
    assert page.post("/code").status_code == 303
    code = _outbox_code(page)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert page.post("/unlock", code=wrong).status_code == 400
    answer = page.post("/unlock", code=code[:3] + " " + code[3:])
    assert answer.status_code == 303
    download = page.post(f"/files/{file_id}")
    assert download.status_code == 200
    assert download.content == b"field,value\nname,Anna\n"
    assert download.headers["content-disposition"].startswith('attachment; filename="dati.csv"')
    assert download.headers["cache-control"] == "no-store"
    assert event_kinds(page.settings, page.reference).count("downloaded") == 1
    with TestClient(page.client.app, base_url=page.settings.base_url,
                    headers={"Origin": page.settings.base_url}) as other:
        other.get(page.path)
        field = csrf_field_value(page.settings, other.cookies["csrf"])
        stolen = other.post(page.path + f"/files/{file_id}", data={"csrf_token": field})
    assert stolen.status_code == 403  # the grant is this browser's cookie, not the link


def test_five_wrong_codes_lock_the_code_on_the_page(page: Page, tmp_path: Path) -> None:
    """After five wrong tries the page says the code is locked, and the right one fails."""
    _answer(page, tmp_path)
    page.post("/code")
    code = _outbox_code(page)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(4):
        assert page.post("/unlock", code=wrong).status_code == 400
    locked = page.post("/unlock", code=wrong)
    assert locked.status_code == 409 and "no longer works" in locked.text
    assert page.post("/unlock", code=code).status_code == 409


def test_codes_are_rate_limited_per_request(tmp_path: Path) -> None:
    """A sixth code within the hour is refused with 429 and Retry-After."""
    settings = make_settings(tmp_path, POLICY_FILES_KEY=FILES_KEY)
    limits = RateLimits(per_ip="100000/hour", key_prefix=f"status-codes-{tmp_path.name}")
    with client_for(settings, rate_limits=limits) as client:
        page = _confirmed_page(client, settings, "/en/request/")
        _answer(page, tmp_path)
        statuses = [page.post("/code").status_code for _ in range(6)]
        assert statuses == [303] * 5 + [429]


def test_a_tampered_file_is_refused_not_served(page: Page, tmp_path: Path,
                                               caplog: pytest.LogCaptureFixture) -> None:
    """One changed byte on disk: the page says the file failed its check; no byte is sent."""
    _answer(page, tmp_path, b"secret,data\n" * 20000)
    [info] = AnswerFiles(page.store, page.settings).files(page.reference)
    path = page.settings.answers_dir / info.stored_as
    raw = bytearray(path.read_bytes())
    raw[-40] ^= 0x01
    path.write_bytes(raw)
    page.post("/code")
    assert page.post("/unlock", code=_outbox_code(page)).status_code == 303
    with caplog.at_level(logging.ERROR):
        answer = page.post(f"/files/{info.id}")
    assert answer.status_code == 500
    assert b"secret,data" not in answer.content
    assert "failed our safety check" in answer.text
    assert "downloaded" not in event_kinds(page.settings, page.reference)


def test_expired_files_are_gone_and_the_page_says_how_to_ask_again(
        page: Page, tmp_path: Path) -> None:
    """After the purge the files are off the disk, and the page says so with a way forward."""
    _answer(page, tmp_path)
    [info] = AnswerFiles(page.store, page.settings).files(page.reference)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
    page.store.purge_answer_files(later, page.settings.answers_dir)
    assert not (page.settings.answers_dir / info.stored_as).exists()
    html = page.get()
    assert "were deleted on" in html and "make a new request" in html
    assert page.post(f"/files/{info.id}").status_code == 410


def test_status_links_are_kept_out_of_the_logs() -> None:
    """The status token, in either language's address, never reaches a log line."""
    for line in ('"GET /request/status/eyJhbGc.abc.def HTTP/1.1" 200',
                 '"POST /en/request/status/eyJhbGc.abc.def/unlock HTTP/1.1" 303'):
        assert "eyJhbGc" not in redact(line) and REDACTED in redact(line)
