"""Requests, their outbox, their history and the anonymous counts.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "requests",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reference", sa.String(16), nullable=False),
        sa.Column("submission_id", sa.String(100), nullable=False),
        sa.Column("request_type", sa.String(40), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("order_number", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("policy_version", sa.String(20), nullable=False),
        sa.Column("policy_sha256", sa.String(64), nullable=False),
        sa.Column("policy_language", sa.String(8), nullable=False),
        sa.Column("policy_viewed_at", _TIME, nullable=False),
        sa.Column("submitted_at", _TIME, nullable=False),
        sa.Column("verified_at", _TIME, nullable=True),
        sa.Column("due_at", sa.Date(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_requests"),
        sa.UniqueConstraint("reference", name="uq_requests_reference"),
        sa.UniqueConstraint("submission_id", name="uq_requests_submission_id"),
    )
    op.create_index("ix_requests_status_submitted_at", "requests", ["status", "submitted_at"])

    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", _TIME, nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_until", _TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("sent_at", _TIME, nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"],
            name="fk_outbox_request_id_requests", ondelete="CASCADE",
        ),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_request_id", "outbox", ["request_id"])
    op.create_index("ix_outbox_status_next_attempt_at", "outbox", ["status", "next_attempt_at"])

    op.create_table(
        "request_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("at", _TIME, nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_request_events"),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"],
            name="fk_request_events_request_id_requests", ondelete="CASCADE",
        ),
    )
    op.create_index("ix_request_events_request_id", "request_events", ["request_id"])

    op.create_table(
        "event_counts",
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "day", name="pk_event_counts"),
    )

    # The history is evidence: rows are added, and removed only with their
    # request when it is purged (GDPR Art. 5(1)(e)), never rewritten.
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION request_events_append_only() RETURNS trigger "
            "LANGUAGE plpgsql AS $$ BEGIN "
            "RAISE EXCEPTION 'request_events is append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER request_events_no_update BEFORE UPDATE ON request_events "
            "FOR EACH ROW EXECUTE FUNCTION request_events_append_only()"
        )
    else:
        op.execute(
            "CREATE TRIGGER request_events_no_update BEFORE UPDATE ON request_events "
            "BEGIN SELECT RAISE(ABORT, 'request_events is append-only'); END"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER request_events_no_update ON request_events")
        op.execute("DROP FUNCTION request_events_append_only()")
    for table in ("event_counts", "request_events", "outbox", "requests"):
        op.drop_table(table)
