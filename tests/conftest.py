"""Fixtures for the storage and delivery tests: real databases and a real SMTP server.

`database_url` runs a test twice, on SQLite (a file in tmp_path) and on
PostgreSQL (127.0.0.1:5432, trust auth, a fresh database per test, dropped
afterwards). PostgreSQL being down fails the run: start it with `make services`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from site_tree import ROOT
from smtp_server import SmtpServer

from form_service.settings import Settings, load_settings
from form_service.store import Store

PG_HOST, PG_PORT, PG_ADMIN_DB = "127.0.0.1", 5432, "test"
PG_USERS = ("postgres", "root")


def _pg_admin() -> tuple[psycopg.Connection, str]:
    errors = []
    for user in PG_USERS:
        try:
            conn = psycopg.connect(
                host=PG_HOST, port=PG_PORT, user=user, dbname=PG_ADMIN_DB,
                autocommit=True, connect_timeout=5,
            )
        except psycopg.OperationalError as exc:
            errors.append(f"{user}: {str(exc).strip()}")
        else:
            return conn, user
    pytest.fail(
        f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (database {PG_ADMIN_DB!r}, "
        f"users {', '.join(PG_USERS)}); start it with `make services`. " + " | ".join(errors)
    )


@pytest.fixture(autouse=True)
def _not_in_a_github_job(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite tests the same output on GitHub Actions as anywhere: `policy-site check`
    adds annotations and a job summary there. Tests of that mode set these themselves."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'requests.sqlite3'}"
        return
    yield from _pg_database()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database of this test alone (for what only PostgreSQL can show)."""
    yield from _pg_database()


def _pg_database() -> Iterator[str]:
    admin, user = _pg_admin()
    name = f"test_{uuid.uuid4().hex[:16]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
        finally:
            # FORCE: a test that failed may have left connections open.
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    active = Store(database_url)
    active.migrate()
    yield active
    active.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings as in production, but with a Maildir in tmp_path and no SMTP server."""
    return load_settings({
        "POLICY_VAR_DIR": str(tmp_path / "var"),
        "POLICY_BASE_URL": "https://privatums.pulkstenu-outlets.lv",
        "POLICY_SECRET_KEY": "test-secret-key-for-the-storage-and-delivery-tests",
        "POLICY_STAFF_EMAIL": "Privātuma komanda <privacy-team@pulkstenu-outlets.lv>",
        "POLICY_MAIL_FROM": "privacy@pulkstenu-outlets.lv",
    }, root=ROOT)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    """A real SMTP server shared by a module's tests (each test filters by its recipient)."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()
