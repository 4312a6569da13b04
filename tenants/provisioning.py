"""Creating and dropping a workspace's schema and database role.

One transaction creates the tenant row, its NOLOGIN role, its schema with every table at head,
and the tenant track's version stamp; any failure leaves nothing behind. Privileges are granted
with ``ALTER DEFAULT PRIVILEGES`` before the tables exist: ``GRANT ... ON ALL TABLES IN SCHEMA``
scans the whole catalog and makes provisioning slower with every tenant.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import errors as pg_errors
from psycopg import sql
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from helpdesk.core.errors import Conflict
from tenants.models import Tenant
from tenants.schema import tenant_head
from tenants.slugs import check_slug, role_name, schema_name

TENANT_GROUP_ROLE = "helpdesk_tenant"


@contextmanager
def _cursor(session: Session) -> Iterator[Any]:
    """A DBAPI cursor in the session's transaction, to send psycopg's composed SQL as it is.
    SQLAlchemy's DBAPI connection, not the driver's: on the request path the driver's is an
    async connection, and SQLAlchemy's adapter is what lets this code stay synchronous."""
    cursor = session.connection().connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    finally:
        cursor.close()


def provision_tenant(session: Session, *, slug: str, name: str, ddl: str) -> Tenant:
    """Create the workspace ``slug`` with its role and its schema built by ``ddl`` (the tenant
    schema at head: ``migrations.models.tenant_ddl()``, which needs every package's models and
    so is compiled above this layer)."""
    check_slug(slug)
    schema, role = schema_name(slug), role_name(slug)
    tenant = Tenant(slug=slug, name=name, schema_name=schema, role_name=role)
    session.add(tenant)
    try:
        session.flush()
    except IntegrityError as exc:
        raise Conflict(f"The slug {slug!r} is already taken.", code="slug_taken") from exc

    schema_id, role_id = sql.Identifier(schema), sql.Identifier(role)
    statements = [
        sql.SQL("CREATE ROLE {} NOLOGIN IN ROLE {}").format(
            role_id, sql.Identifier(TENANT_GROUP_ROLE)
        ),
        sql.SQL("GRANT {} TO CURRENT_USER").format(role_id),
        sql.SQL("CREATE SCHEMA {}").format(schema_id),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema_id, role_id),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {} "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(schema_id, role_id),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA {} GRANT USAGE, SELECT ON SEQUENCES TO {}"
        ).format(schema_id, role_id),
    ]
    try:
        with _cursor(session) as cur:
            for statement in statements:
                cur.execute(statement)
            cur.execute("SELECT set_config('search_path', quote_ident(%s), true)", (schema,))
            cur.execute(ddl)
            cur.execute("INSERT INTO alembic_version (version_num) VALUES (%s)", (tenant_head(),))
            cur.execute("SELECT set_config('search_path', 'public', true)")
    except (pg_errors.DuplicateObject, pg_errors.DuplicateSchema) as exc:
        # Roles are cluster-wide: another database on this server may hold the same names.
        raise Conflict(
            f"The slug {slug!r} is already taken on this database server.", code="slug_taken"
        ) from exc
    return tenant


def drop_tenant(session: Session, tenant: Tenant) -> None:
    """Drop the schema, the role and the registry row (the caller has archived what it must)."""
    schema_id, role_id = sql.Identifier(tenant.schema_name), sql.Identifier(tenant.role_name)
    with _cursor(session) as cur:
        cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(schema_id))
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (tenant.role_name,))
        exists = cur.fetchone()
        if exists:
            cur.execute(sql.SQL("DROP OWNED BY {}").format(role_id))
            cur.execute(sql.SQL("DROP ROLE {}").format(role_id))
    session.execute(delete(Tenant).where(Tenant.id == tenant.id))
