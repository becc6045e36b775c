"""After the form: the status link's per-request key, answer files and download codes.

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-10
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0005"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _request_fk(table: str) -> list[sa.SchemaItem]:
    return [
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["request_id"], ["requests.id"],
                                name=f"fk_{table}_request_id_requests", ondelete="CASCADE"),
    ]


def upgrade() -> None:
    # A plain ADD COLUMN (see 0002 on SQLite's batch mode, which would copy `requests`).
    op.add_column("requests", sa.Column("status_key", sa.String(64), nullable=True))
    # Requests made before: a key each, so that their customers' status links can exist.
    requests = sa.table("requests", sa.column("id", sa.Integer()),
                        sa.column("status_key", sa.String()))
    conn = op.get_bind()
    for (request_id,) in conn.execute(sa.select(requests.c.id)).all():
        conn.execute(requests.update().where(requests.c.id == request_id)
                     .values(status_key=secrets.token_urlsafe(24)))
    op.create_table(
        "answer_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_request_fk("answer_files"),
        sa.Column("stored_as", sa.String(64), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("media_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("deleted_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_answer_files"),
        sa.UniqueConstraint("stored_as", name="uq_answer_files_stored_as"),
    )
    op.create_index("ix_answer_files_request_id", "answer_files", ["request_id"])
    op.create_index("ix_answer_files_expires_at", "answer_files", ["expires_at"])
    op.create_table(
        "download_codes",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_request_fk("download_codes"),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("accepted_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_download_codes"),
    )
    op.create_index("ix_download_codes_request_id", "download_codes", ["request_id"])


def downgrade() -> None:
    op.drop_table("download_codes")
    op.drop_table("answer_files")
    op.drop_column("requests", "status_key")
