"""Members carry what routing reads: their skills and whether they are senior.

Automatic assignment sends a ticket with a category first to candidates holding that skill, and a
critical ticket first to senior candidates. Both live on the member row, beside the role, so the
one query that picks an assignee reads them with the candidates' roles. A tenant's role reads and
writes them for its own workspace's rows (row-level security, as for ``role``), through column
privileges like the other member columns: granting the table would expose ``password_hash``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "members",
        sa.Column(
            "skills",
            postgresql.ARRAY(sa.String(64)),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
        schema="public",
    )
    op.add_column(
        "members",
        sa.Column("senior", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        schema="public",
    )
    op.execute("GRANT SELECT (skills, senior) ON public.members TO helpdesk_tenant")
    op.execute("GRANT UPDATE (skills, senior) ON public.members TO helpdesk_tenant")


def downgrade() -> None:
    op.execute(
        "REVOKE SELECT (skills, senior), UPDATE (skills, senior) ON public.members FROM helpdesk_tenant"
    )
    op.drop_column("members", "senior", schema="public")
    op.drop_column("members", "skills", schema="public")
