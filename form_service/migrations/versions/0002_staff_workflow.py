"""What staff decide about a request: extensions of the deadline and the outcome.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs only: SQLite's batch mode would copy and drop `requests`,
    # and with foreign keys on, the DROP would cascade to the outbox and history.
    # SQLite adds a NOT NULL column only with a default, hence the placeholders,
    # overwritten at once from each row's own due date.
    op.add_column(
        "requests",
        sa.Column("original_due_at", sa.Date(), nullable=False, server_default="1970-01-01"),
    )
    op.execute("UPDATE requests SET original_due_at = due_at")
    op.add_column(
        "requests",
        sa.Column("extended_months", sa.Integer(), nullable=False, server_default="0"),
    )
    op.add_column("requests", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("requests", sa.Column("close_reason", sa.Text(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column("requests", "original_due_at", server_default=None)
    op.create_index("ix_requests_status_due_at", "requests", ["status", "due_at"])


def downgrade() -> None:
    op.drop_index("ix_requests_status_due_at", table_name="requests")
    for column in ("close_reason", "closed_at", "extended_months", "original_due_at"):
        op.drop_column("requests", column)
