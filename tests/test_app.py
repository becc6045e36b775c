"""The app factory and its lifespan: store, migrations, worker (/healthz: test_health.py)."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from web_support import (
    client_for,
    confirmation,
    database_path,
    decide,
    make_settings,
    open_form,
)

from form_service.app import create_app
from form_service.settings import SettingsError
from form_service.store import Store
from form_service.web.assets import AssetsError


def test_importing_the_app_does_nothing(tmp_path: Path) -> None:
    """Importing form_service.app creates no folder, database or secret."""
    env = {"POLICY_VAR_DIR": str(tmp_path / "var"), "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-c", "import form_service.app, form_service.customer.views"],
                   check=True, env=env, cwd=Path(__file__).parent.parent)
    assert not (tmp_path / "var").exists()


def test_create_app_opens_the_store_only_when_started(tmp_path: Path) -> None:
    """The factory touches no database; the lifespan opens and migrates it."""
    settings = make_settings(tmp_path)
    create_app(settings, run_worker=False)
    assert not database_path(settings).exists()
    with client_for(settings) as client:
        assert database_path(settings).exists()
        assert client.get("/healthz").json()["database"] == "ok"


def test_a_given_store_is_used_and_left_open(tmp_path: Path) -> None:
    """A store handed to create_app is migrated and used, and still usable afterwards."""
    settings = make_settings(tmp_path)
    store = Store(f"sqlite:///{tmp_path / 'other.sqlite3'}")
    try:
        with client_for(settings, store=store) as client:
            location = client.post("/request/", data=open_form(client).fields()).headers[
                "location"]
        assert store.ping()
        assert store.get(confirmation(location)["ref"]) is not None
        assert not database_path(settings).exists()
    finally:
        store.close()


def _wait_for_mail(maildir: Path, count: int, timeout: float = 15.0) -> list[email.message.Message]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = sorted((maildir / "new").glob("*")) if (maildir / "new").is_dir() else []
        if len(files) >= count:
            return [email.message_from_bytes(f.read_bytes()) for f in files]
        time.sleep(0.05)
    raise AssertionError(f"{count} messages did not arrive in {maildir}")


def _plain_text(message: email.message.Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode(part.get_content_charset() or "utf-8")
    raise AssertionError("no text/plain part")


def test_worker_sends_the_link_that_verifies_the_request(tmp_path: Path) -> None:
    """The lifespan's worker mails the verification link; opening it verifies the request."""
    settings = make_settings(tmp_path, POLICY_BASE_URL="http://127.0.0.1:8000")
    with client_for(settings, run_worker=True) as client:
        form = open_form(client, "/en/request/")
        location = client.post("/en/request/", data=form.fields()).headers["location"]
        reference = confirmation(location)["ref"]
        [message] = _wait_for_mail(settings.maildir, 1)
        # The bare address: no display name the sender chose.
        assert message["To"] == "anna@example.lv"
        link = re.search(r"http://127\.0\.0\.1:8000(/request/verify/\S+)", _plain_text(message))
        assert link is not None
        page = client.get(link[1])
        assert page.status_code == 200 and reference in page.text
        assert decide(client, link[1], "confirm").status_code == 303
        # Verified: the ticket for staff and the acknowledgement follow.
        assert len(_wait_for_mail(settings.maildir, 3)) == 3


def test_missing_built_site_is_named(tmp_path: Path) -> None:
    """Without a built site the factory says which file is missing and how to make it."""
    settings = make_settings(tmp_path, POLICY_SITE_DIR=str(tmp_path / "nosite"))
    with pytest.raises(AssetsError, match="policy-site build"):
        create_app(settings)


def test_bad_trusted_proxies_fail_at_start(tmp_path: Path) -> None:
    """A malformed POLICY_TRUSTED_PROXIES stops the factory with the variable's name."""
    settings = make_settings(tmp_path, POLICY_TRUSTED_PROXIES="10.0.0.0/8,gateway")
    with pytest.raises(SettingsError, match="POLICY_TRUSTED_PROXIES"):
        create_app(settings)


def test_the_site_can_be_left_to_another_host(tmp_path: Path) -> None:
    """With serve_site=False only the service answers; other paths get our 404 page."""
    with client_for(make_settings(tmp_path), serve_site=False) as client:
        assert client.get("/request/").status_code == 200
        assert client.get("/").status_code == 404
