"""The history hash-chained (chain.py), and events of the register as a whole.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from form_service import chain
from form_service.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_NO_UPDATE_SQLITE = (
    "CREATE TRIGGER request_events_no_update BEFORE UPDATE ON request_events "
    "BEGIN SELECT RAISE(ABORT, 'request_events is append-only'); END"
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    prev_hash = sa.Column("prev_hash", sa.String(64), nullable=True)
    digest = sa.Column("hash", sa.String(64), nullable=True)
    if postgres:
        op.add_column("request_events", prev_hash)
        op.add_column("request_events", digest)
        # Events of the register as a whole (an export, the purge's checkpoint) have no request.
        op.alter_column("request_events", "request_id", nullable=True)
    else:
        # SQLite changes a column's NOT NULL only by copying the table. Nothing refers
        # to request_events, so dropping the old copy cascades nowhere; the copy comes
        # without the append-only trigger, which is made again below.
        with op.batch_alter_table("request_events", recreate="always") as batch:
            batch.add_column(prev_hash)
            batch.add_column(digest)
            batch.alter_column("request_id", existing_type=sa.Integer(), nullable=True)
    op.create_table(
        "event_chain",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("head", sa.String(64), nullable=False),
    )

    # The history written before this revision is chained now, in the order it was
    # written; the append-only trigger is lifted for exactly this and put back.
    if postgres:
        op.execute("ALTER TABLE request_events DISABLE TRIGGER request_events_no_update")
    events = sa.table(
        "request_events",
        sa.column("id", sa.Integer()), sa.column("request_id", sa.Integer()),
        sa.column("kind", sa.String()), sa.column("at", UTCDateTime()),
        sa.column("detail", sa.JSON()), sa.column("prev_hash", sa.String()),
        sa.column("hash", sa.String()),
    )
    head = chain.GENESIS
    rows = bind.execute(
        sa.select(events.c.id, events.c.request_id, events.c.kind, events.c.at,
                  events.c.detail).order_by(events.c.id)
    ).all()
    for row in rows:
        new = chain.link_hash(head, row.request_id, row.kind, row.at, row.detail)
        bind.execute(events.update().where(events.c.id == row.id)
                     .values(prev_hash=head, hash=new))
        head = new
    if postgres:
        op.execute("ALTER TABLE request_events ENABLE TRIGGER request_events_no_update")
    else:
        op.execute(_NO_UPDATE_SQLITE)
    op.execute(sa.text("INSERT INTO event_chain (id, head) VALUES (1, :head)")
               .bindparams(head=head))


def downgrade() -> None:
    op.drop_table("event_chain")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DELETE FROM request_events WHERE request_id IS NULL")
        op.alter_column("request_events", "request_id", nullable=False)
        op.drop_column("request_events", "hash")
        op.drop_column("request_events", "prev_hash")
        return
    op.execute("DELETE FROM request_events WHERE request_id IS NULL")
    with op.batch_alter_table("request_events", recreate="always") as batch:
        batch.drop_column("hash")
        batch.drop_column("prev_hash")
        batch.alter_column("request_id", existing_type=sa.Integer(), nullable=False)
    op.execute(_NO_UPDATE_SQLITE)
