"""Console sessions: the web console's server-side sessions, one per signed-in browser.

A row is keyed by the SHA-256 of the opaque id held in the browser's cookie (a database leak
does not hand out live cookies) and names the session (refresh-token family) its sign-in
opened, so everything that ends a session for the API (sign-out, removal from the workspace)
ends it for the console too: the request pipeline checks ``session_live`` as for a token.
``last_seen_at`` carries the idle timeout, ``created_at`` the absolute one. Workspaces' roles
get no privilege here: only the service reads it, before it enters a workspace.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("id_hash", sa.String(64), nullable=False),
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "last_seen_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name="fk_console_sessions_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id_hash", name="pk_console_sessions"),
        schema="public",
    )
    op.create_index(
        "ix_console_sessions_session_id", "console_sessions", ["session_id"], schema="public"
    )
    # No policy for helpdesk_tenant: a workspace's role reads nothing here.
    op.execute("ALTER TABLE public.console_sessions ENABLE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_table("console_sessions", schema="public")
