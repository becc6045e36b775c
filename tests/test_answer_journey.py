"""The customer's side after the form, whole, in Debian's Chromium with a real SMTP server
and `policy-site serve` in its own process: staff attach a file with the CLI, the customer
is e-mailed, asks for a code, types it and downloads the very bytes; axe on the pages."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from browser import axe_violations, chromium
from live_service import HIDDEN, LiveService, submit
from site_tree import ROOT
from smtp_server import Received, SmtpServer
from smtp_server import body_of as _body
from web_support import built_site

from site_config.facts import load_site

pytestmark = [pytest.mark.browser, pytest.mark.slow]
FILES_KEY = "q6Rz3Yc1S2v9kJ0xWbT4pLmN8aE5uH7dF2gK1sQ0wXo"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, smtp: SmtpServer) -> Iterator[LiveService]:
    live = LiveService(tmp_path_factory.mktemp("answers") / "var", built_site(), smtp.url,
                       POLICY_FILES_KEY=FILES_KEY)
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _mail(smtp: SmtpServer, to: str, subject: str, seconds: float = 30) -> Received:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with smtp.lock:
            found = [m for m in smtp.messages
                     if to in m.recipients and subject in str(m.message["Subject"])]
        if found:
            return found[-1]
        time.sleep(0.1)
    raise AssertionError(f"no e-mail {subject!r} to {to}")


def _confirmed(service: LiveService, smtp: SmtpServer, email: str) -> tuple[str, str]:
    """Submit and confirm as a customer would; the reference and the status link."""
    with httpx2.Client(base_url=service.base_url, headers={"Origin": service.base_url},
                       follow_redirects=False) as client:
        reference, _ = submit(client, email)
        verify = _mail(smtp, email, reference)
        link = re.search(r"http://\S+/request/verify/\S+", _body(verify))
        assert link
        page = client.get(link[0])
        fields = {m["name"]: m["value"] for m in HIDDEN.finditer(page.text)}
        assert client.post(link[0], data={**fields, "decision": "confirm"}).status_code == 303
    ack = _mail(smtp, email, "has been received")
    status = re.search(r"http://\S+/request/status/\S+", _body(ack))
    assert status, _body(ack)
    return reference, status[0]


def _staff(service: LiveService, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "form_service.cli", "--project", str(ROOT), "requests", *args],
        env=service.env, capture_output=True, text=True, timeout=120)


def _answer_file(tmp_path: Path) -> Path:
    """A ZIP of a CSV and a JSON export, about 3 MB, as staff would make one."""
    path = tmp_path / "dati-PO.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("orders.csv", "order,date,total\n" + "A-1042,2026-11-02,129.00\n" * 60000)
        archive.writestr("profile.json", '{"name": "Jānis Bērziņš"}' + " " * 1_500_000)
    return path


def test_staff_attach_a_file_and_the_customer_downloads_the_same_bytes(
        browser: Any, service: LiveService, smtp: SmtpServer, tmp_path: Path) -> None:
    """CLI answer → "ready" e-mail without data → code by e-mail → download; bytes match,
    and the page works with JavaScript switched off."""
    email = f"janis.{time.monotonic_ns()}@example.lv"
    reference, status = _confirmed(service, smtp, email)
    source = _answer_file(tmp_path)
    done = _staff(service, "answer", reference, "--file", str(source),
                  "--message", "Jūsu dati ir pievienotajā ZIP datnē.")
    assert done.returncode == 0, done.stderr
    ready = _mail(smtp, email, "is ready")
    assert "Jānis" not in _body(ready) and "/en/request/status/" in _body(ready)
    sealed = list(Path(service.env["POLICY_VAR_DIR"], "answers").iterdir())
    assert len(sealed) == 1 and b"A-1042" not in sealed[0].read_bytes()

    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    page.goto(status)
    assert "dati-PO.zip" in page.locator("main").inner_text()
    assert page.locator("main form button", has_text="Download").count() == 0
    page.get_by_role("button", name="Send me a code").click()
    code = re.search(r"\b(\d{6})\b", _body(_mail(smtp, email, "download code")))
    assert code
    page.get_by_label("Code from the e-mail").fill(code[1])
    page.get_by_role("button", name="Open the files").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download dati-PO.zip").click()
    download = info.value
    assert download.suggested_filename == "dati-PO.zip"
    assert Path(download.path()).read_bytes() == source.read_bytes()
    page.goto(status)
    assert "a file was downloaded" in page.locator("main").inner_text()
    context.close()


def test_the_status_pages_pass_axe_in_every_language(
        browser: Any, service: LiveService, smtp: SmtpServer, tmp_path: Path) -> None:
    """The status page (open, with a question, answered with files) and the withdrawal page
    have no axe-core violations, in every language of the site."""
    site = load_site(ROOT)
    email = f"anna.{time.monotonic_ns()}@example.lv"
    reference, status = _confirmed(service, smtp, email)
    token = status.rsplit("/", 1)[1]
    asked = _staff(service, "ask", reference, "--question", "Kurš konts ir jūsu?")
    assert asked.returncode == 0, asked.stderr
    page = browser.new_page()
    prefixes = [site.prefix(lang.code) for lang in site.languages]
    for prefix in prefixes:
        url = f"{service.base_url}{prefix}request/status/{token}"
        page.goto(url)
        assert axe_violations(page) == [], f"{prefix} with a question"
        page.goto(url + "/withdraw")
        assert axe_violations(page) == [], f"{prefix} withdrawal page"
    csv = tmp_path / "dati.csv"
    csv.write_text("a,b\n1,2\n", encoding="utf-8")
    assert _staff(service, "answer", reference, "--file", str(csv),
                  "--message", "Dati pievienoti.").returncode == 0
    for prefix in prefixes:
        page.goto(f"{service.base_url}{prefix}request/status/{token}")
        assert axe_violations(page) == [], f"{prefix} answered with files"
    page.close()


def test_answer_without_files_key_is_one_sentence(service: LiveService, tmp_path: Path) -> None:
    """Without POLICY_FILES_KEY the command says so in one sentence and exits 1."""
    env = {k: v for k, v in service.env.items() if k != "POLICY_FILES_KEY"}
    csv = tmp_path / "a.csv"
    csv.write_text("a\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "form_service.cli", "--project", str(ROOT), "requests",
         "answer", "PO-AAAA-BBBB", "--file", str(csv), "--message", "x"],
        env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "POLICY_FILES_KEY must be set" in done.stderr
