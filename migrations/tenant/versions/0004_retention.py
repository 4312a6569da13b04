"""The workspace retention policy (closed tickets, audit events, legal hold).

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0004"
down_revision: str | None = "t0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_policy",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("closed_ticket_days", sa.Integer(), nullable=True),
        sa.Column("audit_event_days", sa.Integer(), nullable=True),
        sa.Column("legal_hold", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "audit_event_days IS NULL OR audit_event_days >= 1",
            name=op.f("ck_retention_policy_audit_event_days"),
        ),
        sa.CheckConstraint(
            "closed_ticket_days IS NULL OR closed_ticket_days >= 1",
            name=op.f("ck_retention_policy_closed_ticket_days"),
        ),
        sa.CheckConstraint("id = 1", name=op.f("ck_retention_policy_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_policy")),
    )


def downgrade() -> None:
    op.drop_table("retention_policy")
