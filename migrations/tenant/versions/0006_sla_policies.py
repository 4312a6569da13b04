"""SLA policies per customer tier, a resolution target beside the first-response one, and
one breach alert per ticket.

Open tickets get a resolution due time from the basic tier's default hours counted from their
creation (wall-clock): their customers' tiers and the workspace's business hours shaped only
the first-response target before, and a backfill that guessed more would pretend a precision
it does not have. Resolved and closed tickets get none. Breaches that already happened are not
alerted now: every ticket already breached is marked as alerted.

Revision ID: t0006
Revises: t0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0006"
down_revision: str | None = "t0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMESTAMPS = ("resolution_due_at", "resolution_paused_at", "sla_alerted_at")


def upgrade() -> None:
    op.add_column(
        "workspace_settings",
        sa.Column(
            "sla_policies",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
    )
    for column in _TIMESTAMPS:
        op.add_column("tickets", sa.Column(column, sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "tickets",
        sa.Column(
            "resolution_breached", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
    )
    op.execute(
        "UPDATE tickets SET resolution_due_at = created_at + make_interval(hours =>"
        " CASE priority WHEN 'critical' THEN 4 WHEN 'high' THEN 24 WHEN 'medium' THEN 72"
        " ELSE 168 END), resolution_paused_at = CASE status WHEN 'pending'"
        " THEN status_changed_at END"
        " WHERE status NOT IN ('resolved', 'closed')"
    )
    op.execute(
        "UPDATE tickets SET sla_alerted_at = now() WHERE sla_breached"
        " OR (first_response_at IS NULL AND sla_due_at < now())"
    )


def downgrade() -> None:
    op.drop_column("tickets", "resolution_breached")
    for column in reversed(_TIMESTAMPS):
        op.drop_column("tickets", column)
    op.drop_column("workspace_settings", "sla_policies")
