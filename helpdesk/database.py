"""Finding the database: ``DATABASE_URL``, or in development an embedded server.

Two login roles reach it (DESIGN.md "Defence in depth, fail-closed"): the **owner** runs
migrations and owns every schema and table; the **service** is what requests and jobs log in as.
The service is no superuser, owns nothing, and reaches a tenant's schema only by ``SET LOCAL
ROLE`` to that tenant's role, of which it is a NOINHERIT member through the ``helpdesk_service``
group: a statement that forgot its role gets ``permission denied``. ``bootstrap_roles`` is the
SQL an operator runs once as a superuser (README "Database roles"); the embedded development
server and the test harness run the same function.
"""

import secrets
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.core.settings import Settings

EMBEDDED_DATABASE = "helpdesk"
EMBEDDED_OWNER = "helpdesk_owner"
EMBEDDED_SERVICE = "helpdesk_app"
# Group roles, one per server (roles are cluster-wide). Every tenant role joins the first; the
# service login role joins the second, which is a NOINHERIT member of every tenant role.
TENANT_GROUP = "helpdesk_tenant"
SERVICE_GROUP = "helpdesk_service"
# The one door past a tenant role's append-only audit trail: retention and GDPR erasure SET ROLE
# to it for their rewrite (audit/retention.py ``owner_role``). It may write every workspace's
# tables but no public ones; only the service group's members may become it.
MAINTENANCE_ROLE = "helpdesk_maintenance"


@dataclass
class Database:
    url: str
    # Migrations and provisioning's owner; None: the service URL does both (one-role setups).
    owner_url: str | None = None
    embedded: EmbeddedPostgres | None = None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def open_database(settings: Settings) -> Database:
    settings.check_production()
    if settings.database_url:
        return Database(settings.database_url, settings.owner_database_url)
    server = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    try:
        return _embedded_database(server)
    except BaseException:
        server.stop()
        raise


def _embedded_database(server: EmbeddedPostgres) -> Database:
    """The development database with both roles. The embedded server trusts its unix socket, so
    the roles need no password; a database made before the roles existed keeps ``postgres`` (a
    superuser) as its owner, since the tables it owns cannot be handed over wholesale."""
    admin = server.libpq_url()
    bootstrap_roles(admin, owner=EMBEDDED_OWNER, service=EMBEDDED_SERVICE)
    with psycopg.connect(admin, autocommit=True) as conn:
        row = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
            (EMBEDDED_DATABASE,),
        ).fetchone()
        if row is None:
            create_owned_database(conn, EMBEDDED_DATABASE, EMBEDDED_OWNER)
            owner = EMBEDDED_OWNER
        else:
            owner = str(row[0])
    with psycopg.connect(server.libpq_url(EMBEDDED_DATABASE), autocommit=True) as conn:
        # Tenant roles made by an older version were never granted to the service group.
        grant_tenant_roles_to_service(conn)
    url = server.url(EMBEDDED_DATABASE)
    return Database(
        url=role_url(url, EMBEDDED_SERVICE),
        owner_url=role_url(url, owner),
        embedded=server,
    )


def role_url(url: str, user: str, password: str | None = None) -> str:
    """``url`` logging in as ``user`` instead (its password replaced, or dropped)."""
    return make_url(url).set(username=user, password=password).render_as_string(hide_password=False)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def bootstrap_roles(
    admin_url: str,
    *,
    owner: str,
    service: str,
    owner_password: str | None = None,
    service_password: str | None = None,
) -> None:
    """Create (or bring up to date) the group roles, the owner and the service login role.

    Run as a superuser: only a superuser may give ``BYPASSRLS``. The service bypasses row-level
    security on ``public`` (sign-in, operators and jobs read across workspaces there); RLS keeps
    constraining the tenant roles, whose attributes, not the login role's, apply after ``SET
    ROLE``. Idempotent: a second run only resets the attributes and passwords.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(bootstrap_sql(owner, service, owner_password, service_password))


def bootstrap_sql(
    owner: str, service: str, owner_password: str | None, service_password: str | None
) -> sql.Composed:
    def ensure(role: str, attributes: str) -> sql.Composed:
        return sql.SQL(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {name}) THEN "
            "CREATE ROLE {role} " + attributes + "; END IF; END $$;"
        ).format(name=sql.Literal(role), role=sql.Identifier(role))

    def password(role: str, value: str | None) -> sql.Composed:
        return sql.SQL("ALTER ROLE {} PASSWORD {};").format(
            sql.Identifier(role), sql.Literal(value) if value is not None else sql.NULL
        )

    owner_id, service_id = sql.Identifier(owner), sql.Identifier(service)
    return sql.Composed(
        [
            ensure(TENANT_GROUP, "NOLOGIN"),
            # NOINHERIT: the service's login role gets this group's own grants (public's tables)
            # but not the tenant roles the group belongs to; it must SET ROLE to use those.
            ensure(SERVICE_GROUP, "NOLOGIN NOINHERIT"),
            ensure(MAINTENANCE_ROLE, "NOLOGIN"),
            sql.SQL("GRANT {} TO {};").format(
                sql.Identifier(MAINTENANCE_ROLE), sql.Identifier(SERVICE_GROUP)
            ),
            ensure(owner, "LOGIN"),
            ensure(service, "LOGIN"),
            sql.SQL("ALTER ROLE {} LOGIN NOSUPERUSER CREATEROLE INHERIT NOBYPASSRLS;").format(
                owner_id
            ),
            sql.SQL(
                "ALTER ROLE {} LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB INHERIT BYPASSRLS;"
            ).format(service_id),
            password(owner, owner_password),
            password(service, service_password),
            # PostgreSQL 16+: making a tenant role IN ROLE helpdesk_tenant, and granting it to
            # helpdesk_service, needs ADMIN OPTION on the group (on the tenant role the owner
            # has it as its creator). Earlier versions let CREATEROLE do both.
            sql.SQL("GRANT {} TO {} WITH ADMIN OPTION;").format(
                sql.Identifier(TENANT_GROUP), owner_id
            ),
            sql.SQL("GRANT {} TO {};").format(sql.Identifier(SERVICE_GROUP), service_id),
        ]
    )


def create_owned_database(conn: psycopg.Connection[Any], name: str, owner: str) -> None:
    """``name``, owned by the owner role (so it may create schemas; from PostgreSQL 15 it owns
    ``public`` through ``pg_database_owner``)."""
    conn.execute(
        sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner))
    )


def grant_tenant_roles_to_service(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        sql.SQL(
            "DO $$ DECLARE r text; BEGIN "
            "FOR r IN SELECT m.rolname FROM pg_roles m "
            "JOIN pg_auth_members a ON a.member = m.oid JOIN pg_roles g ON g.oid = a.roleid "
            "WHERE g.rolname = {tenant} AND NOT pg_has_role({service}, m.oid, 'MEMBER') LOOP "
            "EXECUTE format('GRANT %I TO %I', r, {service}); END LOOP; END $$"
        ).format(tenant=sql.Literal(TENANT_GROUP), service=sql.Literal(SERVICE_GROUP))
    )
