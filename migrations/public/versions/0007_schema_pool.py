"""The schema pool: workspace schemas already built at the tenant head, with their roles, waiting
to be claimed by provisioning (``tenants/pool.py``).

A row names one ready schema and its role. Provisioning takes the oldest row it can lock
(``FOR UPDATE SKIP LOCKED``, so concurrent provisionings never take the same one), deletes it and
renames the schema and role to the new workspace's names in the same transaction. Only the
owner's ``SECURITY DEFINER`` functions write here (helpdesk/migrate.py revokes the service's
writes): a row decides which schema a workspace is given. Workspaces' roles get nothing.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "schema_pool",
        sa.Column("schema_name", sa.String(63), nullable=False),
        sa.Column("role_name", sa.String(63), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("schema_name", name="pk_schema_pool"),
        sa.UniqueConstraint("role_name", name="uq_schema_pool_role_name"),
        schema="public",
    )
    # Claims take the oldest first, so a schema does not wait in the pool forever.
    op.create_index("ix_schema_pool_created_at", "schema_pool", ["created_at"], schema="public")
    # No policy for helpdesk_tenant: a workspace's role reads nothing here.
    op.execute("ALTER TABLE public.schema_pool ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_table("schema_pool", schema="public")
