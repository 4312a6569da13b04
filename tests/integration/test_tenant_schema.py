"""The workspace schema: provisioning builds exactly what the tenant migrations build, builds
all of it or nothing, refuses bad and taken slugs, and leaves a workspace's role unable to reach
another workspace's schema or another workspace's rows in ``public``."""

import random
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine, func, select, text

from helpdesk.core.db import set_tenant_scope, transaction
from helpdesk.core.errors import Conflict, InvalidInput
from helpdesk.runtime import Runtime
from migrations.models import TENANT_METADATA, tenant_ddl
from tenants.migrations import TenantVersion, upgrade_tenant
from tenants.models import Tenant
from tenants.provisioning import TENANT_GROUP_ROLE, drop_tenant, provision_tenant
from tenants.registry import get_by_slug
from tenants.schema import tenant_head, tenant_script
from tenants.slugs import role_name, schema_name
from tests.support.catalog import ASPECTS, DESCRIBED, Snapshot
from tests.support.catalog import empty_schema as empty_catalog_schema
from tests.support.catalog import snapshot as catalog_snapshot
from tests.support.factories import Factory, Workspace, unique_slug

pytestmark = pytest.mark.integration


def snapshot(engine: Engine, slug: str) -> Snapshot:
    return catalog_snapshot(engine, schema_name(slug), role_name(slug))


def run(engine: Engine, statement: sql.Composable) -> None:
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute(statement)


def version_stamp(engine: Engine, slug: str) -> list[str]:
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        table = sql.Identifier(schema_name(slug), "alembic_version")
        rows = raw.execute(sql.SQL("SELECT version_num FROM {}").format(table)).fetchall()
    return [row[0] for row in rows]


def provision(runtime: Runtime, slug: str) -> None:
    with transaction(runtime.sessions) as session:
        provision_tenant(session, slug=slug, name=f"Workspace {slug}", ddl=tenant_ddl())


def drop(runtime: Runtime, slug: str) -> None:
    with transaction(runtime.sessions) as session:
        drop_tenant(session, get_by_slug(session, slug))


def empty_schema(runtime: Runtime, slug: str) -> None:
    empty_catalog_schema(runtime.engine, schema_name(slug))


@dataclass(frozen=True)
class BuiltBothWays:
    provisioned: Snapshot
    migrated: Snapshot
    provisioned_stamp: list[str]
    migrated_stamp: list[str]


@pytest.fixture(scope="module")
def built_both_ways(runtime: Runtime) -> Iterator[BuiltBothWays]:
    by_ddl, by_migrations = unique_slug("ddl"), unique_slug("mig")
    provision(runtime, by_ddl)
    provision(runtime, by_migrations)
    try:
        empty_schema(runtime, by_migrations)
        assert snapshot(runtime.engine, by_migrations)["relations"] == []
        result = upgrade_tenant(
            runtime.engine,
            TenantVersion(by_migrations, schema_name(by_migrations), None),
            tenant_script(),
        )
        assert result.ok, result.error
        assert result.to_revision == tenant_head()
        yield BuiltBothWays(
            snapshot(runtime.engine, by_ddl),
            snapshot(runtime.engine, by_migrations),
            version_stamp(runtime.engine, by_ddl),
            version_stamp(runtime.engine, by_migrations),
        )
    finally:
        drop(runtime, by_ddl)
        drop(runtime, by_migrations)


@pytest.mark.parametrize("aspect", ASPECTS)
def test_provisioned_schema_equals_the_migrated_one(
    built_both_ways: BuiltBothWays, aspect: str
) -> None:
    # Two empty lists would compare equal: the aspect must describe something.
    if aspect in DESCRIBED:
        assert built_both_ways.provisioned[aspect]
    assert built_both_ways.provisioned[aspect] == built_both_ways.migrated[aspect]


def test_both_ways_stamp_the_tenant_head(built_both_ways: BuiltBothWays) -> None:
    assert built_both_ways.provisioned_stamp == [tenant_head()]
    assert built_both_ways.migrated_stamp == [tenant_head()]


def test_provisioning_builds_every_model_table(built_both_ways: BuiltBothWays) -> None:
    tables = {row[0] for row in built_both_ways.provisioned["relations"] if row[1] == "r"}
    assert tables == {*TENANT_METADATA.tables, "alembic_version"}


# --- Provisioning builds all or nothing -------------------------------------------------------


def _catalog_state(engine: Engine, slug: str) -> dict[str, Any]:
    with engine.connect() as conn:
        return {
            "tenant_rows": conn.scalar(
                select(func.count()).select_from(Tenant).where(Tenant.slug == slug)
            ),
            "schema": conn.scalar(
                text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"),
                {"n": schema_name(slug)},
            ),
            "relations": conn.scalar(
                text(
                    "SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                    "ON n.oid = c.relnamespace WHERE n.nspname = :n"
                ),
                {"n": schema_name(slug)},
            ),
            "default_acls": conn.scalar(
                text(
                    "SELECT count(*) FROM pg_default_acl d JOIN pg_namespace n "
                    "ON n.oid = d.defaclnamespace WHERE n.nspname = :n"
                ),
                {"n": schema_name(slug)},
            ),
            "role": conn.scalar(
                text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role_name(slug)}
            ),
            "in_group": conn.scalar(
                text(
                    "SELECT count(*) FROM pg_auth_members m "
                    "JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid "
                    "WHERE r.rolname = :r AND g.rolname = :g"
                ),
                {"r": role_name(slug), "g": TENANT_GROUP_ROLE},
            ),
        }


@contextmanager
def squatted(runtime: Runtime, slug: str, kind: str) -> Iterator[None]:
    """Occupy the name provisioning will need, as another database on the server (a role) or a
    stray object in this one (a schema) would."""
    if kind == "role":
        create = sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(role_name(slug)))
        remove = sql.SQL("DROP ROLE {}").format(sql.Identifier(role_name(slug)))
    else:
        create = sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema_name(slug)))
        remove = sql.SQL("DROP SCHEMA {}").format(sql.Identifier(schema_name(slug)))
    run(runtime.engine, create)
    try:
        yield
    finally:
        run(runtime.engine, remove)


@pytest.mark.parametrize("kind", ["role", "schema"])
def test_a_failed_provisioning_leaves_nothing_behind(runtime: Runtime, kind: str) -> None:
    slug = unique_slug("busy")
    with squatted(runtime, slug, kind):
        with pytest.raises(Conflict) as raised:
            provision(runtime, slug)
        after = _catalog_state(runtime.engine, slug)
    assert raised.value.code == "slug_taken"
    assert slug in raised.value.detail
    # Only the squatter's own object remains: no row, no tables, no grants, no role of ours.
    assert after == {
        "tenant_rows": 0,
        "schema": 1 if kind == "schema" else 0,
        "relations": 0,
        "default_acls": 0,
        "role": 1 if kind == "role" else 0,
        "in_group": 0,
    }


def test_a_taken_slug_is_a_conflict(runtime: Runtime) -> None:
    slug = unique_slug("taken")
    provision(runtime, slug)
    try:
        before = snapshot(runtime.engine, slug)
        with pytest.raises(Conflict) as raised:
            provision(runtime, slug)
        assert raised.value.code == "slug_taken"
        assert slug in raised.value.detail
        # The first workspace is untouched by the refused second one.
        assert _catalog_state(runtime.engine, slug)["tenant_rows"] == 1
        assert snapshot(runtime.engine, slug) == before
    finally:
        drop(runtime, slug)


@pytest.mark.parametrize(
    ("slug", "rule"),
    [
        ("ab", "3 to 40 characters"),
        ("Acme", "lowercase"),
        ("1acme", "a lowercase letter, then"),
        ("pg_acme", "may not start with 'pg_'"),
        ("a" * 41, "3 to 40 characters"),
        ("ac-me", "lowercase letters, digits or underscores"),
    ],
    ids=["too_short", "uppercase", "starts_with_digit", "pg_prefix", "41_chars", "hyphen"],
)
def test_a_bad_slug_is_refused_with_the_rule(runtime: Runtime, slug: str, rule: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        provision(runtime, slug)
    assert raised.value.code == "invalid_slug"
    assert raised.value.loc == ["body", "slug"]
    assert repr(slug) in raised.value.detail
    assert rule in raised.value.detail
    assert _catalog_state(runtime.engine, slug)["tenant_rows"] == 0


@pytest.mark.parametrize("length", [3, 40])
def test_slugs_at_the_length_limits_are_provisioned(runtime: Runtime, length: int) -> None:
    alphabet = string.ascii_lowercase + string.digits
    slug = "z" + "".join(random.choices(alphabet, k=length - 1))
    provision(runtime, slug)
    try:
        assert version_stamp(runtime.engine, slug) == [tenant_head()]
        assert len(schema_name(slug).encode()) <= 63
    finally:
        drop(runtime, slug)


# --- What a workspace's role may reach ---------------------------------------------------------


@pytest.fixture(scope="module")
def two_workspaces(runtime: Runtime) -> tuple[Workspace, Workspace]:
    factory = Factory(runtime)
    return factory.workspace(), factory.workspace()


@contextmanager
def as_tenant(engine: Engine, ws: Workspace) -> Iterator[Any]:
    """A transaction scoped to ``ws`` the way the request pipeline scopes one; rolled back."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            set_tenant_scope(conn, ws.schema_name, ws.role_name)
            yield conn.connection.driver_connection
        finally:
            tx.rollback()


@pytest.mark.parametrize("table", ["tickets", "customers", "audit_events", "alembic_version"])
def test_a_tenant_role_cannot_read_another_tenants_schema(
    runtime: Runtime, two_workspaces: tuple[Workspace, Workspace], table: str
) -> None:
    mine, theirs = two_workspaces
    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(theirs.schema_name, table))
    with as_tenant(runtime.engine, mine) as raw:
        # The same table in the tenant's own schema is readable: the refusal is about whose.
        raw.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(mine.schema_name, table)))
    with (
        as_tenant(runtime.engine, mine) as raw,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        raw.execute(query)


def test_a_tenant_role_cannot_read_password_hashes(
    runtime: Runtime, two_workspaces: tuple[Workspace, Workspace]
) -> None:
    mine, _ = two_workspaces
    with as_tenant(runtime.engine, mine) as raw:
        assert raw.execute("SELECT email FROM public.members").fetchall()
    with (
        as_tenant(runtime.engine, mine) as raw,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        raw.execute("SELECT password_hash FROM public.members")


def test_a_tenant_role_sees_only_its_own_public_rows(
    runtime: Runtime, two_workspaces: tuple[Workspace, Workspace]
) -> None:
    mine, theirs = two_workspaces
    with runtime.engine.connect() as conn:
        # As the owner every workspace is there, so the filtered view below is not vacuous.
        all_slugs = set(conn.scalars(text("SELECT slug FROM public.tenants")))
    assert {mine.slug, theirs.slug} <= all_slugs
    with as_tenant(runtime.engine, mine) as raw:
        tenants = raw.execute("SELECT slug FROM public.tenants").fetchall()
        members = raw.execute("SELECT tenant_id, user_id FROM public.members").fetchall()
    assert tenants == [(mine.slug,)]
    assert members == [(mine.id, mine.admin.user_id)]


def test_a_tenant_role_cannot_read_the_platforms_operators(
    runtime: Runtime, two_workspaces: tuple[Workspace, Workspace]
) -> None:
    mine, _ = two_workspaces
    with (
        as_tenant(runtime.engine, mine) as raw,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"),
    ):
        raw.execute("SELECT email FROM public.users")
