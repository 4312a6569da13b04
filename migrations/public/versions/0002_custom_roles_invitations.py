"""Custom roles, invitations, and what a tenant's role may write in public.

Member and role management runs in the request's tenant scope like everything else, so the
tenant role may write its own workspace's memberships and custom roles (row-level security
checks every row) and may create identities only through ``public.ensure_identity``, which
never reveals another identity's columns.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWN_TENANT = "tenant_id IN (SELECT id FROM public.tenants)"


def upgrade() -> None:
    op.create_table(
        "custom_roles",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("permissions", postgresql.ARRAY(sa.String(64)), nullable=False),
        sa.Column("ticket_scope", sa.String(16), server_default="all", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name="fk_custom_roles_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "name", name="pk_custom_roles"),
        schema="public",
    )
    op.create_table(
        "invitations",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["public.users.id"],
            name="fk_invitations_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name="fk_invitations_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_invitations"),
        schema="public",
    )
    op.create_index("ix_invitations_user_id", "invitations", ["user_id"], schema="public")

    op.execute("ALTER TABLE public.custom_roles ENABLE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE public.invitations ENABLE ROW LEVEL SECURITY")
    for table in ("custom_roles", "invitations"):
        op.execute(
            f"CREATE POLICY own_tenant ON public.{table} FOR ALL TO helpdesk_tenant "
            f"USING ({_OWN_TENANT}) WITH CHECK ({_OWN_TENANT})"
        )
    op.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON public.custom_roles TO helpdesk_tenant")
    op.execute("GRANT SELECT, INSERT, DELETE ON public.invitations TO helpdesk_tenant")
    op.execute("GRANT INSERT, UPDATE (role), DELETE ON public.memberships TO helpdesk_tenant")
    op.execute(
        "CREATE POLICY own_tenant_insert ON public.memberships FOR INSERT TO helpdesk_tenant "
        f"WITH CHECK ({_OWN_TENANT})"
    )
    op.execute(
        "CREATE POLICY own_tenant_update ON public.memberships FOR UPDATE TO helpdesk_tenant "
        f"USING ({_OWN_TENANT}) WITH CHECK ({_OWN_TENANT})"
    )
    op.execute(
        "CREATE POLICY own_tenant_delete ON public.memberships FOR DELETE TO helpdesk_tenant "
        f"USING ({_OWN_TENANT})"
    )
    op.execute(
        """
        CREATE FUNCTION public.ensure_identity(p_email text, p_name text, p_password_hash text)
        RETURNS TABLE (user_id uuid, created boolean)
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            SELECT u.id, false INTO user_id, created FROM public.users u
             WHERE lower(u.email) = lower(p_email);
            IF NOT FOUND THEN
                INSERT INTO public.users (email, name, password_hash)
                VALUES (p_email, p_name, p_password_hash)
                RETURNING id, true INTO user_id, created;
            END IF;
            RETURN NEXT;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION public.ensure_identity(text, text, text) FROM PUBLIC")
    op.execute(
        "GRANT EXECUTE ON FUNCTION public.ensure_identity(text, text, text) TO helpdesk_tenant"
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION public.ensure_identity(text, text, text)")
    for policy in ("own_tenant_insert", "own_tenant_update", "own_tenant_delete"):
        op.execute(f"DROP POLICY {policy} ON public.memberships")
    op.execute("REVOKE INSERT, UPDATE, DELETE ON public.memberships FROM helpdesk_tenant")
    op.drop_table("invitations", schema="public")
    op.drop_table("custom_roles", schema="public")
