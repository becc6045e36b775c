"""The cap on verification e-mails per mailbox: each request's mailbox, and the mails sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN (see 0002 on SQLite's batch mode). Requests stored before
    # this revision have no mailbox: each of their verification e-mails goes alone.
    op.add_column("requests", sa.Column("mailbox", sa.String(64), nullable=True))
    op.create_index("ix_requests_mailbox_status", "requests", ["mailbox", "status"])
    op.create_table(
        "verify_mails",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("mailbox", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_verify_mails_mailbox_at", "verify_mails", ["mailbox", "at"])


def downgrade() -> None:
    op.drop_index("ix_verify_mails_mailbox_at", table_name="verify_mails")
    op.drop_table("verify_mails")
    op.drop_index("ix_requests_mailbox_status", table_name="requests")
    op.drop_column("requests", "mailbox")
