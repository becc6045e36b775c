"""Alembic environment: run by form_service.db.migrate with an open connection."""

from __future__ import annotations

from alembic import context

from form_service.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("Run the migrations through form_service.db.migrate (Store.migrate).")

# render_as_batch: SQLite cannot ALTER most things, so later revisions copy the table.
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
