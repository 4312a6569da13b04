"""Public revision 0004 moves global identities into their workspaces without a reset.

A database is migrated to 0003 and filled the way the old model left it (one identity that
is a member of two workspaces, an operator, a removed member's live invitation, a session),
then migrated to head: every membership becomes a member row of its own workspace that
keeps the original user id, address, name and password hash.
"""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from helpdesk.migrate import public_config
from tests.support.postgres import RunRoles, drop_database, recreate_database, sqlalchemy_url

pytestmark = pytest.mark.integration

SHARED = uuid.uuid4()
OPERATOR = uuid.uuid4()
FORMER = uuid.uuid4()
ALPHA, BETA = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def owner(pg_info: dict[str, str], run_roles: RunRoles) -> Iterator[Engine]:
    database = f"hd_identities_{uuid.uuid4().hex[:8]}"
    url = make_url(pg_info["admin_url"]).set(database=database)
    recreate_database(pg_info["admin_url"], database, owner=run_roles.owner)
    engine = create_engine(
        sqlalchemy_url(run_roles.owner_url(url.render_as_string(hide_password=False)))
    )
    try:
        yield engine
    finally:
        engine.dispose()
        drop_database(pg_info["admin_url"], database)


def _upgrade(engine: Engine, revision: str) -> None:
    config = public_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _fill_as_0003_left_it(conn: Connection) -> None:
    later = datetime.now(UTC) + timedelta(days=1)
    for tenant, slug in ((ALPHA, "alpha"), (BETA, "beta")):
        conn.execute(
            text(
                "INSERT INTO public.tenants (id, slug, name, schema_name, role_name)"
                " VALUES (:id, :slug, :slug, :schema, :schema)"
            ),
            {"id": tenant, "slug": slug, "schema": f"tenant_{slug}"},
        )
    users = [
        (SHARED, "Pat@Example.com", "Pat", "hash-of-pat", False),
        (OPERATOR, "op@platform.example", "Op", "hash-of-op", True),
        (FORMER, "gone@example.com", "Gone", None, False),
    ]
    for user_id, email, name, password_hash, operator in users:
        conn.execute(
            text(
                "INSERT INTO public.users (id, email, name, password_hash, is_operator)"
                " VALUES (:id, :email, :name, :hash, :operator)"
            ),
            {
                "id": user_id,
                "email": email,
                "name": name,
                "hash": password_hash,
                "operator": operator,
            },
        )
    conn.execute(
        text(
            "INSERT INTO public.memberships (user_id, tenant_id, role) VALUES"
            " (:shared, :alpha, 'admin'), (:shared, :beta, 'agent')"
        ),
        {"shared": SHARED, "alpha": ALPHA, "beta": BETA},
    )
    # FORMER was invited to alpha and removed: the invitation outlived the membership.
    conn.execute(
        text(
            "INSERT INTO public.invitations (token_hash, user_id, tenant_id, expires_at) VALUES"
            " ('stale', :former, :alpha, :later), ('live', :shared, :beta, :later)"
        ),
        {"former": FORMER, "shared": SHARED, "alpha": ALPHA, "beta": BETA, "later": later},
    )
    conn.execute(
        text(
            "INSERT INTO public.refresh_tokens (token_hash, family_id, user_id, tenant_id,"
            " expires_at) VALUES ('session-in-beta', gen_random_uuid(), :shared, :beta, :later)"
        ),
        {"shared": SHARED, "beta": BETA, "later": later},
    )


def test_each_membership_becomes_its_workspaces_own_identity_under_the_same_id(
    owner: Engine,
) -> None:
    _upgrade(owner, "0003")
    with owner.begin() as conn:
        _fill_as_0003_left_it(conn)
    _upgrade(owner, "head")
    with owner.connect() as conn:
        members = conn.execute(
            text(
                "SELECT tenant_id, user_id, email, name, password_hash, role"
                " FROM public.members ORDER BY role"
            )
        ).all()
        users = conn.execute(text("SELECT id FROM public.users")).scalars().all()
        invitations = conn.execute(text("SELECT token_hash FROM public.invitations")).all()
        sessions = conn.execute(
            text("SELECT user_id, tenant_id FROM public.refresh_tokens WHERE revoked_at IS NULL")
        ).all()
    assert members == [
        (ALPHA, SHARED, "Pat@Example.com", "Pat", "hash-of-pat", "admin"),
        (BETA, SHARED, "Pat@Example.com", "Pat", "hash-of-pat", "agent"),
    ]
    assert users == [OPERATOR]
    assert invitations == [("live",)]
    assert sessions == [(SHARED, BETA)]


def test_after_the_move_one_workspace_changing_its_copy_leaves_the_other_alone(
    owner: Engine,
) -> None:
    _upgrade(owner, "0003")
    with owner.begin() as conn:
        _fill_as_0003_left_it(conn)
    _upgrade(owner, "head")
    with owner.begin() as conn:
        conn.execute(
            text("UPDATE public.members SET password_hash = 'new' WHERE tenant_id = :t"),
            {"t": ALPHA},
        )
        # Removing a member deletes their invitation with them.
        conn.execute(text("DELETE FROM public.members WHERE tenant_id = :t"), {"t": BETA})
    with owner.connect() as conn:
        hashes = conn.execute(text("SELECT password_hash FROM public.members")).scalars().all()
        invitations = conn.execute(text("SELECT count(*) FROM public.invitations")).scalar_one()
        revoked = conn.execute(
            text("SELECT revoked_at IS NOT NULL FROM public.refresh_tokens")
        ).scalar_one()
    assert hashes == ["new"]
    assert invitations == 0
    assert revoked is True
