"""A workspace's default phone region: where a customer's number written without a country code
is dialled.

Revision ID: t0009
Revises: t0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0009"
down_revision: str | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A constant default: PostgreSQL records it in the catalog, no table rewrite.
    op.add_column(
        "workspace_settings",
        sa.Column("phone_region", sa.String(length=2), server_default="US", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("workspace_settings", "phone_region")
