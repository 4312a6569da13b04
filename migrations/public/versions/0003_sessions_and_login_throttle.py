"""Sessions that end, and a sign-in throttle counted under one row lock.

``public.session_live`` answers whether a session (a refresh-token family) is still open, that
is, not revoked; the request pipeline asks it on every request, also under a tenant's role,
which may not read ``refresh_tokens`` itself. Expiry is left to the access token's own ``exp``
(minutes, issued while a refresh token of the family was live, so never outliving it): the
app's clock sets both, and comparing with the database's clock would mix the two. Deleting a membership revokes every refresh token of that member in
that workspace (a trigger, so every way a membership ends counts), which ends their sessions for
good: adding them again starts no old session anew.

``login_throttle`` holds one row per throttled key (an account in a workspace, or a client
address): the attempts counted and when the last one was. A sign-in locks its rows
(``SELECT ... FOR UPDATE``) to decide and count in one step, so parallel guesses queue on the
lock instead of all reading the same count.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttle",
        sa.Column("key", sa.String(420), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name="pk_login_throttle"),
        schema="public",
    )
    op.create_index(
        "ix_refresh_tokens_user_id_tenant_id",
        "refresh_tokens",
        ["user_id", "tenant_id"],
        schema="public",
    )
    op.execute(
        """
        CREATE FUNCTION public.session_live(p_session uuid, p_user uuid, p_tenant uuid)
        RETURNS boolean
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
            SELECT EXISTS (
                SELECT FROM public.refresh_tokens r
                 WHERE r.family_id = p_session
                   AND r.user_id = p_user
                   AND r.tenant_id IS NOT DISTINCT FROM p_tenant
                   AND r.revoked_at IS NULL
            )
        $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION public.session_live(uuid, uuid, uuid) FROM PUBLIC")
    op.execute("GRANT EXECUTE ON FUNCTION public.session_live(uuid, uuid, uuid) TO helpdesk_tenant")
    op.execute(
        """
        CREATE FUNCTION public.end_member_sessions() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
        BEGIN
            UPDATE public.refresh_tokens SET revoked_at = now()
             WHERE user_id = OLD.user_id AND tenant_id = OLD.tenant_id AND revoked_at IS NULL;
            RETURN OLD;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION public.end_member_sessions() FROM PUBLIC")
    op.execute(
        "CREATE TRIGGER end_member_sessions AFTER DELETE ON public.memberships "
        "FOR EACH ROW EXECUTE FUNCTION public.end_member_sessions()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER end_member_sessions ON public.memberships")
    op.execute("DROP FUNCTION public.end_member_sessions()")
    op.execute("DROP FUNCTION public.session_live(uuid, uuid, uuid)")
    op.drop_index("ix_refresh_tokens_user_id_tenant_id", "refresh_tokens", schema="public")
    op.drop_table("login_throttle", schema="public")
