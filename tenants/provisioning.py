"""Creating and dropping a workspace's schema and database role.

One transaction creates the tenant row, its NOLOGIN role, its schema with every table at head,
and the tenant track's version stamp; any failure leaves nothing behind. The role and schema are
made by ``public.helpdesk_provision_tenant``, a ``SECURITY DEFINER`` function owned by the owner
role (helpdesk/migrate.py writes it): the service role provisions over HTTP in the request's own
transaction, yet may create neither. Privileges are granted with ``ALTER DEFAULT PRIVILEGES``
before the tables exist: ``GRANT ... ON ALL TABLES IN SCHEMA`` scans the whole catalog and makes
provisioning slower with every tenant.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from psycopg import errors as pg_errors
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

    try:
        with _cursor(session) as cur:
            # The owner's SECURITY DEFINER function (helpdesk/migrate.py): the service role that
            # runs this may create no role or schema itself, and the function runs only the
            # tenant DDL that `helpdesk migrate` installed.
            cur.execute(
                "SELECT public.helpdesk_provision_tenant(%s, %s, %s, %s)",
                (schema, role, ddl, tenant_head()),
            )
    except (pg_errors.DuplicateObject, pg_errors.DuplicateSchema) as exc:
        # Roles are cluster-wide: another database on this server may hold the same names.
        raise Conflict(
            f"The slug {slug!r} is already taken on this database server.", code="slug_taken"
        ) from exc
    return tenant


def drop_tenant(session: Session, tenant: Tenant) -> None:
    """Drop the schema, the role and the registry row (the caller has archived what it must)."""
    with _cursor(session) as cur:
        # The owner's SECURITY DEFINER function, as for provisioning.
        cur.execute(
            "SELECT public.helpdesk_drop_tenant(%s, %s)", (tenant.schema_name, tenant.role_name)
        )
    session.execute(delete(Tenant).where(Tenant.id == tenant.id))
