"""Tenant registry, identities, memberships, refresh tokens, login throttling, platform audit.

Also the ``helpdesk_tenant`` group role that every tenant role joins: it may read only the public
rows of its own workspace (row-level security keyed on ``current_user``), and only the harmless
columns of ``users``.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NOW = sa.text("now()")
_UUID = sa.text("gen_random_uuid()")


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schema_name", sa.String(63), nullable=False),
        sa.Column("role_name", sa.String(63), nullable=False),
        sa.Column("status", sa.String(16), server_default="active", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("slug", name="uq_tenants_slug"),
        sa.UniqueConstraint("schema_name", name="uq_tenants_schema_name"),
        sa.UniqueConstraint("role_name", name="uq_tenants_role_name"),
        schema="public",
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_operator", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        schema="public",
    )
    op.create_index(
        "uq_users_email_lower", "users", [sa.text("lower(email)")], unique=True, schema="public"
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["public.users.id"],
            name="fk_memberships_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name="fk_memberships_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "tenant_id", name="pk_memberships"),
        schema="public",
    )
    op.create_index("ix_memberships_tenant_id", "memberships", ["tenant_id"], schema="public")
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.Uuid(), server_default=_UUID, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["public.users.id"],
            name="fk_refresh_tokens_user_id_users",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["public.tenants.id"],
            name="fk_refresh_tokens_tenant_id_tenants",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_refresh_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_refresh_tokens_token_hash"),
        schema="public",
    )
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"], schema="public")
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"], schema="public")
    op.create_table(
        "login_failures",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_login_failures"),
        schema="public",
    )
    op.create_index(
        "ix_login_failures_email_at", "login_failures", ["email", "at"], schema="public"
    )
    op.create_index(
        "ix_login_failures_address_at", "login_failures", ["address", "at"], schema="public"
    )
    op.create_table(
        "platform_audit_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=_NOW, nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_email", sa.String(320), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=True),
        sa.Column("target_id", sa.String(64), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(400), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_platform_audit_events"),
        schema="public",
    )
    op.create_index(
        "ix_platform_audit_events_occurred_at",
        "platform_audit_events",
        ["occurred_at"],
        schema="public",
    )
    op.create_index(
        "ix_platform_audit_events_action", "platform_audit_events", ["action"], schema="public"
    )

    # Roles are cluster-wide; another database on the same server may have made it already.
    op.execute(
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'helpdesk_tenant') "
        "THEN CREATE ROLE helpdesk_tenant NOLOGIN; END IF; END $$"
    )
    op.execute("GRANT USAGE ON SCHEMA public TO helpdesk_tenant")
    op.execute("GRANT SELECT ON public.tenants, public.memberships TO helpdesk_tenant")
    op.execute("GRANT SELECT (id, email, name, disabled) ON public.users TO helpdesk_tenant")
    for table in ("tenants", "memberships", "users"):
        op.execute(f"ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY own_tenant ON public.tenants FOR SELECT TO helpdesk_tenant "
        "USING (role_name = current_user)"
    )
    op.execute(
        "CREATE POLICY own_tenant ON public.memberships FOR SELECT TO helpdesk_tenant "
        "USING (tenant_id IN (SELECT id FROM public.tenants))"
    )
    op.execute(
        "CREATE POLICY own_tenant ON public.users FOR SELECT TO helpdesk_tenant "
        "USING (id IN (SELECT user_id FROM public.memberships))"
    )


def downgrade() -> None:
    for table in ("users", "memberships", "tenants"):
        op.execute(f"DROP POLICY IF EXISTS own_tenant ON public.{table}")
    op.execute("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM helpdesk_tenant")
    op.execute("REVOKE USAGE ON SCHEMA public FROM helpdesk_tenant")
    for table in (
        "platform_audit_events",
        "login_failures",
        "refresh_tokens",
        "memberships",
        "users",
        "tenants",
    ):
        op.drop_table(table, schema="public")
