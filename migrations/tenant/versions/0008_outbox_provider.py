"""The outbox records which e-mail provider sent each message (HELPDESK_MAIL_PROVIDERS).

Revision ID: t0008
Revises: t0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "t0008"
down_revision: str | None = "t0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Nullable, no default: a metadata-only change, instant on a large outbox.
    op.add_column("outbox", sa.Column("provider", sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "provider")
