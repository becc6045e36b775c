"""Logs: one line per event, and never a token, a query string or a recipient's address."""

from __future__ import annotations

import json
import logging
import logging.config
import re
import sqlite3
import time
from pathlib import Path

import httpx2 as httpx
import pytest
from live_service import LiveService, submit
from smtp_server import SmtpServer
from web_support import built_site

from form_service.web.logs import REDACTED, JsonFormatter, Redact, TextFormatter, log_config, redact


def test_tokens_and_query_strings_are_taken_out() -> None:
    """Link tokens (verify, sent, status) and whole query strings become "…"."""
    assert redact("/request/verify/eyJyZWYiOiJQTy0.aw.sig") == f"/request/verify/{REDACTED}"
    assert redact("/en/request/sent/abc.def.ghi?x=1") == (
        f"/en/request/sent/{REDACTED}?{REDACTED}")
    assert redact('"GET /en/request/?name=Anna&email=a%40b.lv HTTP/1.1"') == (
        f'"GET /en/request/?{REDACTED} HTTP/1.1"')
    assert redact("/request/status/tok.en") == f"/request/status/{REDACTED}"
    assert redact("/versions/1.0/") == "/versions/1.0/"


def _record(msg: str, args: tuple[object, ...] | None = None,
            exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc else None
    return logging.LogRecord("form_service", logging.ERROR, __file__, 1, msg, args, exc_info)


def test_the_filter_rewrites_message_arguments_and_traceback() -> None:
    """Whatever logger made the record, its arguments and its exception are redacted, and
    the exception is folded into one line."""
    try:
        raise RuntimeError("failed on /request/verify/secret.token.sig\nsecond line")
    except RuntimeError as exc:
        record = _record("Unhandled error on %s %s", ("POST", "/request/verify/secret.tok"), exc)
    assert Redact().filter(record)
    line = TextFormatter().format(record)
    assert "secret" not in line and "\n" not in line
    assert f"/request/verify/{REDACTED}" in line and "RuntimeError" in line


def test_json_lines_are_one_object_each() -> None:
    """POLICY_LOG_FORMAT=json: each event is one line of JSON with time, level and message."""
    record = _record("sent %s", ("<PO-7K3M-9QXD.verify@pulkstenu-outlets.lv>",))
    Redact().filter(record)
    event = json.loads(JsonFormatter().format(record))
    assert event["level"] == "ERROR" and event["message"].startswith("sent <PO-7K3M-9QXD")
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", event["time"])
    for fmt in ("text", "json"):
        logging.config.dictConfig(log_config(fmt))  # a config dictConfig accepts
    logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})


# --- the real service's output ------------------------------------------------------


def _service(tmp_path: Path, smtp_server: SmtpServer, **env: str) -> LiveService:
    service = LiveService(tmp_path / "var", built_site(), smtp_server.url, **env)
    service.start()
    return service


def _wait_until(condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_the_served_log_holds_no_token_query_or_recipient(tmp_path: Path,
                                                          smtp_server: SmtpServer) -> None:
    """Through `policy-site serve`: a GET carrying form fields in its query, a confirmation
    link, a 503 on that link (the database locked) and a refused recipient leave none of
    the tokens, typed values or addresses in the log."""
    smtp_server.reject("refused.person@example.lv", 550)
    service = _service(tmp_path, smtp_server, POLICY_LOG_FORMAT="json")
    try:
        with httpx.Client(base_url=service.base_url, timeout=30,
                          headers={"Origin": service.base_url}) as client:
            client.get("/en/request/?name=Anna+Secret&email=anna.secret%40example.lv"
                       "&csrf_token=csrfsecretvalue")
            reference, sent_page = submit(client, "person@example.lv")
            link = _link_for(smtp_server, "person@example.lv")
            page = client.get(link)
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert csrf
            # Another writer holds SQLite's write lock past the busy timeout: the POST fails
            # with the "try again" page (web/deadline.py), and the log says why.
            locker = sqlite3.connect(service.database_url.removeprefix("sqlite:///"),
                                     isolation_level=None)
            locker.execute("BEGIN IMMEDIATE")
            try:
                failed = client.post(link, data={"csrf_token": csrf[1], "decision": "confirm"})
            finally:
                locker.execute("ROLLBACK")
                locker.close()
            assert failed.status_code == 503
            submit(client, "refused.person@example.lv")
            _wait_until(lambda: "failed" in service.log.read_text())
    finally:
        service.stop()
    log = service.log.read_text()
    lines = [line for line in log.splitlines() if line.startswith("{")]
    assert lines and all(json.loads(line) for line in lines)
    token = link.rsplit("/", 1)[1]
    for secret in (token, sent_page.rsplit("/", 1)[1], "Anna", "anna.secret", "csrfsecretvalue",
                   "refused.person", "person@example.lv"):
        assert secret not in log, secret
    assert "<recipient>" in log and reference
    assert any(json.loads(line)["level"] == "ERROR" for line in lines)


def _link_for(smtp_server: SmtpServer, address: str) -> str:
    _wait_until(lambda: any(address in m.recipients for m in smtp_server.messages))
    mail = next(m for m in smtp_server.messages if address in m.recipients)
    part = mail.message.get_body(("plain",))
    assert part is not None
    found = re.search(r"https?://\S+(/request/verify/\S+)", str(part.get_content()))
    assert found
    return found[1]

