"""Identities belong to one workspace: each membership becomes that workspace's own identity.

Before this revision a person had one global identity (``public.users``) shared by every
workspace they were a member of, so one workspace could create, rename or set the password of
an identity another workspace later relied on. Now ``public.members`` holds a workspace's
identities, keyed by (workspace, user id): the e-mail address is unique within a workspace
only, and the row carries the password. Tenant roles see and write only their own workspace's
rows (row-level security, as before) and never read a password hash (column privileges).
``public.users`` keeps the platform's operators only.

Existing data moves: every membership becomes a member row holding a copy of its identity's
address, name and password hash, under the same user id, so the audit trail, the member
routes, assignees and refresh tokens still refer to it. Sessions stay open. Invitations
belong to their member and die with it (a stale one is deleted here). Identities that were
nobody's operator account and are now copied into their workspaces leave ``public.users``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# What a tenant's role may read of its members: everything but the password hash.
_READABLE = "tenant_id, user_id, email, name, role, created_at"


def upgrade() -> None:
    # The renamed table keeps its row-level security policies, its grants and the trigger that
    # ends a removed member's sessions.
    op.execute("ALTER TABLE public.memberships RENAME TO members")
    op.execute("ALTER TABLE public.members DROP CONSTRAINT fk_memberships_user_id_users")
    op.execute(
        "ALTER TABLE public.members RENAME CONSTRAINT fk_memberships_tenant_id_tenants"
        " TO fk_members_tenant_id_tenants"
    )
    op.execute("ALTER TABLE public.members DROP CONSTRAINT pk_memberships")
    op.execute("DROP INDEX public.ix_memberships_tenant_id")
    op.add_column("members", sa.Column("email", sa.String(320)), schema="public")
    op.add_column("members", sa.Column("name", sa.String(200)), schema="public")
    op.add_column("members", sa.Column("password_hash", sa.String(255)), schema="public")
    op.execute(
        "UPDATE public.members m SET email = u.email, name = u.name,"
        " password_hash = u.password_hash FROM public.users u WHERE u.id = m.user_id"
    )
    op.alter_column("members", "email", nullable=False, schema="public")
    op.alter_column("members", "name", nullable=False, schema="public")
    op.alter_column(
        "members", "user_id", server_default=sa.text("gen_random_uuid()"), schema="public"
    )
    op.create_primary_key("pk_members", "members", ["tenant_id", "user_id"], schema="public")
    op.create_index(
        "uq_members_tenant_id_email_lower",
        "members",
        ["tenant_id", sa.text("lower(email)")],
        unique=True,
        schema="public",
    )

    op.execute("ALTER TABLE public.invitations DROP CONSTRAINT fk_invitations_user_id_users")
    op.execute(
        "DELETE FROM public.invitations i WHERE NOT EXISTS (SELECT FROM public.members m"
        " WHERE m.tenant_id = i.tenant_id AND m.user_id = i.user_id)"
    )
    op.create_foreign_key(
        "fk_invitations_tenant_id_user_id_members",
        "invitations",
        "members",
        ["tenant_id", "user_id"],
        ["tenant_id", "user_id"],
        source_schema="public",
        referent_schema="public",
        ondelete="CASCADE",
    )

    # A refresh token names an operator (no workspace) or a member of its workspace.
    op.execute("ALTER TABLE public.refresh_tokens DROP CONSTRAINT fk_refresh_tokens_user_id_users")
    op.execute("DELETE FROM public.users WHERE NOT is_operator")

    op.execute("DROP FUNCTION public.ensure_identity(text, text, text)")
    op.execute("DROP POLICY own_tenant ON public.users")
    op.execute("REVOKE ALL ON public.users FROM helpdesk_tenant")
    op.execute("REVOKE SELECT ON public.members FROM helpdesk_tenant")
    op.execute(f"GRANT SELECT ({_READABLE}) ON public.members TO helpdesk_tenant")
    op.execute("REVOKE UPDATE ON public.members FROM helpdesk_tenant")
    op.execute("GRANT UPDATE (role, name) ON public.members TO helpdesk_tenant")


def downgrade() -> None:
    raise NotImplementedError(
        "Identities per workspace cannot be merged back into global identities: two "
        "workspaces may now hold the same address with different passwords. Restore a backup "
        "taken before revision 0004 instead."
    )
