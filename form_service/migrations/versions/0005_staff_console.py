"""The staff console: members, their passkeys, invites, sessions and WebAuthn challenges.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _member_fk(table: str, nullable: bool = False) -> list[sa.SchemaItem]:
    return [
        sa.Column("member_id", sa.Integer(), nullable=nullable),
        sa.ForeignKeyConstraint(["member_id"], ["staff_members.id"],
                                name=f"fk_{table}_member_id_staff_members", ondelete="CASCADE"),
    ]


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("user_handle", sa.String(100), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_members"),
        sa.UniqueConstraint("email", name="uq_staff_members_email"),
        sa.UniqueConstraint("user_handle", name="uq_staff_members_user_handle"),
    )
    op.create_table(
        "staff_credentials",
        sa.Column("id", sa.Integer(), primary_key=True),
        *_member_fk("staff_credentials"),
        sa.Column("credential_id", sa.String(1400), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("last_used_at", _TIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_staff_credentials"),
        sa.UniqueConstraint("credential_id", name="uq_staff_credentials_credential_id"),
    )
    op.create_index("ix_staff_credentials_member_id", "staff_credentials", ["member_id"])
    for table in ("staff_invites", "staff_sessions"):
        last = ("used_at", True) if table == "staff_invites" else ("last_seen_at", False)
        op.create_table(
            table,
            sa.Column("id", sa.Integer(), primary_key=True),
            *_member_fk(table),
            sa.Column("token_hash", sa.String(64), nullable=False),
            sa.Column("created_at", _TIME, nullable=False),
            sa.Column(last[0], _TIME, nullable=last[1]),
            sa.Column("expires_at", _TIME, nullable=False),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint("token_hash", name=f"uq_{table}_token_hash"),
        )
        op.create_index(f"ix_{table}_member_id", table, ["member_id"])
    op.create_table(
        "staff_challenges",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("challenge_hash", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        *_member_fk("staff_challenges", nullable=True),
        sa.Column("expires_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_staff_challenges"),
        sa.UniqueConstraint("challenge_hash", name="uq_staff_challenges_challenge_hash"),
    )


def downgrade() -> None:
    for table in ("staff_challenges", "staff_sessions", "staff_invites", "staff_credentials",
                  "staff_members"):
        op.drop_table(table)
