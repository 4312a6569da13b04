"""Auto-assignment can be limited to tickets of a minimum priority.

``low`` (every ticket) keeps today's behaviour for workspaces that already assign automatically.

Revision ID: t0007
Revises: t0006
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0007"
down_revision: str | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "workspace_settings",
        sa.Column(
            "auto_assign_min_priority",
            sa.String(length=16),
            server_default="low",
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("workspace_settings", "auto_assign_min_priority")
