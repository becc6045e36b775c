"""Helpers for the console's tests: a service with the console on, members, passkeys."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from passkeys import SoftPasskey
from starlette.testclient import TestClient
from web_support import client_for, make_settings

from form_service.settings import Settings
from form_service.staff.members import Members
from form_service.store import Store

BASE_URL = "https://privatums.pulkstenu-outlets.lv"
_CSRF_DATA = re.compile(r'data-csrf="([^"]+)"')
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_settings(tmp_path: Path, **env: str) -> Settings:
    values = {"POLICY_BASE_URL": BASE_URL, "POLICY_STAFF_CONSOLE": "on"}
    values.update(env)
    return make_settings(tmp_path, **values)


@dataclass
class Console:
    """A running service with the console on, its database, and the test's clock."""

    client: TestClient
    settings: Settings
    store: Store

    @property
    def members(self) -> Members:
        return Members(self.store)

    def invite(self, email: str = "anna@pulkstenu-outlets.lv", name: str = "Anna Liepa",
               language: str = "en", at: dt.datetime | None = None) -> str:
        _, token = self.members.invite(email, name, language, at or dt.datetime.now(dt.UTC))
        return token

    def passkey(self) -> SoftPasskey:
        return SoftPasskey("privatums.pulkstenu-outlets.lv", BASE_URL)

    def page_csrf(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text[:300]
        found = _CSRF_DATA.search(page.text) or _CSRF_FIELD.search(page.text)
        assert found, f"no CSRF token on {path}"
        return found[1]

    def enrol(self, token: str, passkey: SoftPasskey) -> Any:
        path = f"/staff/enrol/{token}"
        csrf = self.page_csrf(path)
        options = self.client.post(f"{path}/options", json={"csrf": csrf})
        assert options.status_code == 200, options.text
        return self.client.post(f"{path}/verify", json={
            "csrf": csrf, "credential": passkey.create(options.json()["options"])})

    def sign_in(self, passkey: SoftPasskey) -> Any:
        csrf = self.page_csrf("/staff/sign-in")
        options = self.client.post("/staff/sign-in/options", json={"csrf": csrf})
        assert options.status_code == 200, options.text
        return self.client.post("/staff/sign-in/verify", json={
            "csrf": csrf, "credential": passkey.get(options.json()["options"])})

    def member(self, email: str = "anna@pulkstenu-outlets.lv",
               language: str = "en") -> SoftPasskey:
        """A member enrolled and signed in (the client holds the session)."""
        passkey = self.passkey()
        answer = self.enrol(self.invite(email, language=language), passkey)
        assert answer.status_code == 200, answer.text
        return passkey

    def csrf(self, path: str = "/staff/") -> str:
        return self.page_csrf(path)


@contextmanager
def console(tmp_path: Path, **env: str) -> Iterator[Console]:
    settings = console_settings(tmp_path, **env)
    store = Store(settings.database_url)
    store.migrate()
    try:
        with client_for(settings) as client:
            yield Console(client, settings, store)
    finally:
        store.close()
