"""Database engines for SQLite (embedded default) and PostgreSQL (scale-out), and migrations."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

MIGRATIONS = "form_service:migrations"
# Any constant will do: it only has to be the same in every instance, so that
# instances starting together run the migrations one after the other.
_MIGRATION_LOCK = 0x504F4C49


def normalise_url(database_url: str) -> URL:
    """postgres:// and postgresql:// mean psycopg 3, the driver we install."""
    url = make_url(database_url)
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg")
    return url


def create(database_url: str) -> Engine:
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        # /healthz must answer quickly when the server is gone, not after the OS's TCP timeout.
        connect_args["connect_timeout"] = 5
    return create_engine(
        url, pool_pre_ping=True, connect_args=connect_args, hide_parameters=True
    )


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        path = Path(url.database)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # SQLite gives the -wal and -shm files the mode of the database file, so
        # creating that one 0600 keeps all three private (form_service/private.py).
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    # hide_parameters: a failed INSERT's message would otherwise carry the customer's
    # name, e-mail and words into the log (GDPR Art. 5(1)(f), integrity and confidentiality).
    engine = create_engine(url, hide_parameters=True)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3 would BEGIN only before the first write, and always DEFERRED;
        # we emit BEGIN ourselves (below) so that a writer can ask for IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL lets readers run beside the one writer; synchronous=FULL makes a
        # committed request survive a power cut; busy_timeout makes a second
        # writer wait instead of failing; foreign keys are off unless asked for.
        for pragma in (
            "journal_mode=WAL",
            "synchronous=FULL",
            "busy_timeout=5000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the write lock at BEGIN: upgrading a read lock
        # later can fail at once with "database is locked", busy_timeout or not.
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer(engine: Engine) -> Engine:
    """The same pool, for transactions that write (BEGIN IMMEDIATE on SQLite)."""
    return engine.execution_options(sqlite_immediate=True)


def migrate(engine: Engine) -> tuple[str | None, str | None]:
    """Bring the schema to the newest revision; safe to call from every instance at start.

    Returns the revisions before and after, both read under the lock, so that of
    instances migrating together exactly one sees the change.
    """
    # Imported here: alembic costs a third of a second, and `policy-site check` never migrates.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
        before = MigrationContext.configure(conn).get_current_revision()
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
        return before, MigrationContext.configure(conn).get_current_revision()


def revision(engine: Engine) -> str | None:
    """The schema revision the database is at; None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
