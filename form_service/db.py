"""Database engines for SQLite (embedded default) and PostgreSQL (scale-out), and migrations."""

from __future__ import annotations

import math
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


def create(database_url: str, *, timeout: float = 5.0, statements: bool = True) -> Engine:
    """The engine for `database_url`.

    `timeout`: seconds a request may wait on the database. `statements`: whether
    PostgreSQL also cancels statements and lock waits after `timeout`; off for the
    staff's commands (an export, verify-log), which may read for longer.
    """
    url = normalise_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(
        url, pool_pre_ping=True, connect_args=_pg_connect_args(url, timeout, statements),
        # A connection stuck on a silent path stays checked out until the path
        # returns; without this, every later request would wait SQLAlchemy's default
        # 30 s for one of them (its thread, not the customer: web/deadline.py answers).
        pool_timeout=timeout,
        hide_parameters=True,
    )


def _pg_connect_args(url: URL, timeout: float, statements: bool) -> dict[str, Any]:
    """libpq's parameters that bound how long the server, or the path to it, can keep us.

    Anything already in the URL's query wins (the operator's word).
    """
    ms = max(1, round(timeout * 1000))
    args: dict[str, Any] = {
        # /healthz must answer quickly when the server is gone, not after the OS's TCP timeout.
        "connect_timeout": max(2, math.ceil(timeout)),
        # A path that drops packets silently: keepalives find an idle connection dead
        # in about 5 + 3 * 2 s, and tcp_user_timeout a connection whose bytes sent
        # stay unacknowledged (the kernel would otherwise retry for about 15 minutes).
        "keepalives": 1,
        "keepalives_idle": 5,
        "keepalives_interval": 2,
        "keepalives_count": 3,
        "tcp_user_timeout": max(10_000, 2 * ms),
        # The server gives up on a statement, or on waiting for a lock, that takes
        # longer than a request may wait: the thread and connection come back instead
        # of working on for a customer who has already been told to try again.
        # Migrations lift both (migrate(), below).
        "options": f"-c statement_timeout={ms} -c lock_timeout={ms}",
    }
    if not statements:
        del args["options"]
    return {name: value for name, value in args.items() if name not in url.query}


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
            # A migration may rewrite a big table, and an instance starting beside
            # others waits for their migrations: no request's timeouts here.
            conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
            conn.exec_driver_sql("SET LOCAL lock_timeout = 0")
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
