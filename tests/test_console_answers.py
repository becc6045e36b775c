"""The console's side of issue 12 through HTTP (passkeys made in software): asking the
customer for information and answering with files, each previewed before it is done."""

from __future__ import annotations

import datetime as dt
import html as htmllib
import re
from pathlib import Path

import pytest
from console_support import Console, console
from delivery_support import new_request

from form_service.answer_files import AnswerFiles
from form_service.followup import FollowUp
from form_service.records import RequestRecord

ANNA = "anna@pulkstenu-outlets.lv"
FILES_KEY = "q6Rz3Yc1S2v9kJ0xWbT4pLmN8aE5uH7dF2gK1sQ0wXo"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def c(tmp_path: Path):  # type: ignore[no-untyped-def]
    with console(tmp_path, POLICY_FILES_KEY=FILES_KEY, POLICY_ANSWER_FILE_MAX_MB="1") as running:
        running.member()
        yield running


def _request(c: Console) -> RequestRecord:
    record, _ = c.store.create_request(new_request(submitted_at=NOW - dt.timedelta(hours=1),
                                                   language="en"))
    result = c.store.verify(record.reference, NOW - dt.timedelta(minutes=30))
    assert result is not None
    return result[0]


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no {name} on the page"
    return htmllib.unescape(found[1])


def test_asking_is_previewed_then_sent_and_names_the_member(c: Console) -> None:
    """Click 1 shows the exact e-mail; click 2 records the question, by whom, and queues it."""
    record = _request(c)
    path = f"/staff/requests/{record.reference}/ask"
    csrf = c.csrf(f"/staff/requests/{record.reference}")
    question = "Please tell us the e-mail address your shop account uses."
    preview = c.client.post(path, data={"csrf_token": csrf, "reason": question,
                                        "step": "preview"})
    assert preview.status_code == 200
    assert question in preview.text.split('class="console-mail__body"')[1]
    assert FollowUp(c.store).open_question(record.reference) is None
    done = c.client.post(path, data={"csrf_token": csrf, "reason": question, "step": "confirm",
                                     "previewed": _hidden(preview.text, "previewed")})
    assert done.headers["location"].endswith("?done=asked")
    asked = next(e for e in c.store.events(record.reference) if e.kind == "info_requested")
    assert asked.detail is not None and asked.detail["by"] == ANNA
    assert [m.kind for m in c.store.messages(record.reference)][-1] == "info"
    page = c.client.get(f"/staff/requests/{record.reference}").text
    assert question in page


def _upload(c: Console, record: RequestRecord, files: list[tuple[str, bytes]],
            reason: str = "Your data, as a CSV."):  # type: ignore[no-untyped-def]
    csrf = c.csrf(f"/staff/requests/{record.reference}")
    return c.client.post(
        f"/staff/requests/{record.reference}/answer",
        data={"csrf_token": csrf, "step": "preview", "reason": reason},
        files=[("file", (name, body, "application/octet-stream")) for name, body in files])


def test_answer_files_are_sealed_on_upload_previewed_then_answered(c: Console) -> None:
    """Click 1 seals the uploaded files and previews the data-free e-mail; click 2 answers."""
    record = _request(c)
    body = b"field,value\nname,Jan\n" * 100
    preview = _upload(c, record, [("dati.csv", body), ("notes.txt", b"plain text")])
    assert preview.status_code == 200, preview.text[:500]
    assert "dati.csv" in preview.text and "notes.txt" in preview.text
    mail = preview.text.split('class="console-mail__body"')[1]
    assert "is ready" in mail and "Jan" not in mail.split("Hello")[1].split("\n")[0] + "x"
    sealed = list(c.settings.answers_dir.iterdir())
    assert len(sealed) == 2 and all(b"name,Jan" not in p.read_bytes() for p in sealed)
    assert c.store.get(record.reference).status == "verified"  # nothing answered yet
    csrf = c.csrf(f"/staff/requests/{record.reference}")
    fields = {"csrf_token": csrf, "step": "confirm", "reason": "Your data, as a CSV.",
              "files": _hidden(preview.text, "files"),
              "files_seal": _hidden(preview.text, "files_seal"),
              "previewed": _hidden(preview.text, "previewed")}
    tampered = dict(fields, files=fields["files"].replace("dati.csv", "other.csv"))
    refused = c.client.post(f"/staff/requests/{record.reference}/answer", data=tampered)
    assert refused.status_code == 200 and c.store.get(record.reference).status == "verified"
    done = c.client.post(f"/staff/requests/{record.reference}/answer", data=fields)
    assert done.headers["location"].endswith("?done=answered")
    assert c.store.get(record.reference).status == "done"
    files = AnswerFiles(c.store, c.settings).files(record.reference)
    assert [f.name for f in files] == ["dati.csv", "notes.txt"] and files[0].size == len(body)
    closed = next(e for e in c.store.events(record.reference) if e.kind == "closed")
    assert closed.detail is not None and closed.detail["by"] == ANNA
    assert [m.kind for m in c.store.messages(record.reference)][-1] == "ready"


@pytest.mark.parametrize(("name", "body", "words"), [
    ("tool.exe", b"MZ", "not of a type an answer may carry"),
    ("report.pdf", b"<html>", "is not what its name says"),
    ("big.csv", b"x" * 1_000_001, "larger than 1 MB"),
])
def test_a_refused_upload_keeps_nothing(c: Console, name: str, body: bytes, words: str) -> None:
    """A file of another type, not what its name says, or over the limit: said plainly, and
    no sealed file stays behind."""
    record = _request(c)
    answer = _upload(c, record, [("ok.csv", b"a,b\n"), (name, body)])
    assert answer.status_code == 400 and words in answer.text
    assert list(c.settings.answers_dir.iterdir()) == []
    assert c.store.get(record.reference).status == "verified"


def test_an_upload_without_the_csrf_field_keeps_nothing(c: Console) -> None:
    """The CSRF field is checked once the body is read; the files sealed meanwhile are deleted."""
    record = _request(c)
    answer = c.client.post(f"/staff/requests/{record.reference}/answer",
                           data={"step": "preview", "reason": "x"},
                           files=[("file", ("a.csv", b"a,b\n", "text/csv"))])
    assert answer.status_code == 403
    assert list(c.settings.answers_dir.iterdir()) == []


def test_without_the_files_key_the_console_offers_no_upload(tmp_path: Path) -> None:
    """POLICY_FILES_KEY unset: no upload form, and a posted upload says why."""
    with console(tmp_path) as running:
        running.member()
        record = _request(running)
        page = running.client.get(f"/staff/requests/{record.reference}").text
        assert 'enctype="multipart/form-data"' not in page
        answer = _upload(running, record, [("a.csv", b"a,b\n")])
        assert answer.status_code == 400 and "POLICY_FILES_KEY is not set" in answer.text
