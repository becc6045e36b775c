"""Delivery by time: when a message's current round of tries began, and the health probe's row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The worker gives up on a message a number of days after its tries began
    # (RFC 5321 §4.5.4.1), not after a count of tries; staff's retry starts a new
    # round. NULL (rows queued before this revision): the row's created_at.
    op.add_column("outbox", sa.Column("trying_since", sa.DateTime(timezone=True), nullable=True))
    # /healthz commits a write to this one row: a database that can be read but no
    # longer written (a full disk) is not healthy.
    op.create_table(
        "health_probe",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("health_probe")
    op.drop_column("outbox", "trying_since")
