"""Helpers for the web layer's tests: settings in a temporary folder, a client, the form."""

from __future__ import annotations

import atexit
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from site_tree import ROOT
from smtp_server import free_port
from starlette.testclient import TestClient

from form_service.app import create_app
from form_service.settings import Settings, load_settings
from form_service.tokens import make_token, read_token
from form_service.web.ratelimit import RateLimits

SECRET = "web-tests-secret-key-that-is-long-enough-to-sign-things"  # noqa: S105 (tests only)
# The day the tests pretend it is: version 1.0 (effective 2026-11-24) is in force.
TODAY_ISO = "2026-12-01"

_HIDDEN = re.compile(r'<input type="hidden" name="(?P<name>[a-z_]+)" value="(?P<value>[^"]*)">')


@cache
def built_site() -> Path:
    """The built policy site: the project's own if built, else one built once per run."""
    own = ROOT / "site"
    if (own / "versions.json").is_file():
        return own
    from site_config.build_site import build_and_compress

    out = Path(tempfile.mkdtemp(prefix="web-site-"))
    atexit.register(shutil.rmtree, out, ignore_errors=True)
    return build_and_compress(ROOT, out / "site")


def make_settings(tmp_path: Path, **env: str) -> Settings:
    values = {
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_SECRET_KEY": SECRET,
        "POLICY_SITE_DIR": str(built_site()),
        "POLICY_DATABASE_URL": f"sqlite:///{tmp_path / 'requests.sqlite3'}",
    }
    values.update(env)
    return load_settings(values, root=ROOT)


def generous_limits(prefix: str = "policy-site-tests") -> RateLimits:
    return RateLimits(per_ip="100000/hour", key_prefix=prefix)


@contextmanager
def client_for(
    settings: Settings, *, peer: str = "192.0.2.10", **app_options: Any
) -> Iterator[TestClient]:
    """A TestClient with the app's lifespan running (store, limiter; no worker unless asked).

    `peer` is the address the app sees the connection come from.
    """
    import datetime as dt

    app_options.setdefault("run_worker", False)
    app_options.setdefault("today", dt.date.fromisoformat(TODAY_ISO))
    app_options.setdefault("rate_limits", generous_limits())
    app = create_app(settings, **app_options)
    # A browser sends Origin on every POST; a POST without it is refused.
    with TestClient(app, base_url=settings.base_url, follow_redirects=False,
                    client=(peer, 50000), headers={"Origin": settings.base_url}) as client:
        yield client


@dataclass
class FormPage:
    html: str
    csrf: str
    form_token: str

    def fields(self, **overrides: str) -> dict[str, str]:
        """A valid submission of this form, with any field replaced."""
        values = {
            "csrf_token": self.csrf,
            "form_token": self.form_token,
            "name": "Anna Bērziņa",
            "email": "anna@example.lv",
            "request_type": "access",
            "details": "Lūdzu, sniedziet kopiju par visiem maniem datiem.",
            "phone": "",
            "order_number": "",
            "subject": "",
        }
        values.update(overrides)
        return values


def open_form(client: TestClient, path: str = "/request/") -> FormPage:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return open_form_from(response.text)


def open_form_from(page: str) -> FormPage:
    """The form on a page the service answered with (a blank one, or one with errors)."""
    hidden = {m["name"]: m["value"] for m in _HIDDEN.finditer(page)}
    return FormPage(page, hidden["csrf_token"], hidden["form_token"])


def confirmation(location: str) -> dict[str, Any]:
    """The payload of a confirmation page's address (reference and due date)."""
    token = location.rsplit("/", 1)[1]
    return read_token(SECRET, "confirm", token, 3600)


def verify_link(reference: str, secret: str = SECRET) -> str:
    return f"/request/verify/{make_token(secret, 'verify', {'ref': reference})}"


def decide(client: TestClient, link: str, decision: str = "confirm") -> Any:
    """Open the confirmation link's page and press one of its buttons, as a person does."""
    page = client.get(link)
    assert page.status_code == 200, page.text
    hidden = {m["name"]: m["value"] for m in _HIDDEN.finditer(page.text)}
    return client.post(link, data={"csrf_token": hidden["csrf_token"], "decision": decision})


def database_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def count_requests(settings: Settings) -> int:
    with closing(sqlite3.connect(database_path(settings))) as conn:
        return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])


def stored_requests(settings: Settings) -> list[Mapping[str, Any]]:
    with closing(sqlite3.connect(database_path(settings))) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(row) for row in conn.execute("SELECT * FROM requests ORDER BY id")]


def old_token(purpose: str, payload: dict[str, Any], age_seconds: int,
              secret: str = SECRET) -> str:
    """A genuine token signed `age_seconds` ago (to test expiry without waiting)."""
    import time

    from itsdangerous import TimestampSigner, URLSafeTimedSerializer

    class _Past(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    return URLSafeTimedSerializer(secret, salt=purpose, signer=_Past).dumps(payload)


def count_outbox(settings: Settings, kind: str) -> int:
    with closing(sqlite3.connect(database_path(settings))) as conn:
        row = conn.execute("SELECT count(*) FROM outbox WHERE kind = ?", (kind,)).fetchone()
        return int(row[0])


def event_kinds(settings: Settings, reference: str) -> list[str]:
    with closing(sqlite3.connect(database_path(settings))) as conn:
        rows = conn.execute(
            "SELECT e.kind FROM request_events e JOIN requests r ON r.id = e.request_id "
            "WHERE r.reference = ? ORDER BY e.id", (reference,))
        return [kind for (kind,) in rows]


def stored_request(settings: Settings, reference: str) -> Mapping[str, Any] | None:
    with closing(sqlite3.connect(database_path(settings))) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM requests WHERE reference = ?", (reference,)).fetchone()
        return None if row is None else dict(row)


@contextmanager
def served(settings: Settings, port: int | None = None, *, host_name: str = "127.0.0.1",
           **app_options: Any) -> Iterator[str]:
    """The app under a real uvicorn in a thread, for the browser; yields its base URL.

    `port`: listen there (a site built for that address); by default a free one.
    `host_name`: how the browser names the server ("localhost" for passkeys: WebAuthn
    refuses an IP address as the relying party's id).
    """
    import datetime as dt
    import threading
    import time

    import uvicorn

    app_options.setdefault("run_worker", False)
    app_options.setdefault("today", dt.date.fromisoformat(TODAY_ISO))
    app_options.setdefault("rate_limits", generous_limits())
    port = port or free_port()
    # The Origin check compares with the base URL exactly: it is where the browser goes.
    settings = replace(settings, base_url=f"http://{host_name}:{port}")
    config = uvicorn.Config(create_app(settings, **app_options), host="127.0.0.1", port=port,
                            log_level="warning", proxy_headers=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://{host_name}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
