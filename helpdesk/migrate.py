"""Running both migration tracks: public first, then every tenant schema.

Run as the owner role. After the public track, every migrate (re)states what the service role
may do (README "Database roles"): read and write ``public``'s tables (whatever revision added
them), and create or drop a workspace only through two ``SECURITY DEFINER`` functions owned by
the owner. The provisioning function runs only the tenant DDL this code version installed (its
digest is written into the function here), so a compromised service cannot run DDL of its own
choosing as the owner.
"""

import hashlib

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from helpdesk.database import MAINTENANCE_ROLE, SERVICE_GROUP, TENANT_GROUP
from migrations import PUBLIC_DIR
from migrations.models import tenant_ddl
from tenants.locks import LockKey, lock_platform
from tenants.schema import tenant_head

PROVISION_FUNCTION = "public.helpdesk_provision_tenant(text, text, text, text)"
DROP_FUNCTION = "public.helpdesk_drop_tenant(text, text)"


def public_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(PUBLIC_DIR))
    return config


def upgrade_public(engine: Engine) -> None:
    config = public_config()
    with engine.begin() as connection:
        # Two processes starting at once (two `helpdesk serve`, a deploy) must not both migrate.
        lock_platform(connection, LockKey.MIGRATIONS)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        grant_service(connection)


def tenant_schema_digest(ddl: str, head: str) -> str:
    return hashlib.md5(f"{head}\n{ddl}".encode(), usedforsecurity=False).hexdigest()


def grant_service(connection: Connection) -> None:
    """The service group's privileges in ``public`` and the two lifecycle functions."""
    digest = tenant_schema_digest(tenant_ddl(), tenant_head())
    statements = [
        # Made by README's SQL beforehand; a one-role setup (DATABASE_URL alone) has none yet.
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"'{SERVICE_GROUP}') THEN CREATE ROLE {SERVICE_GROUP} NOLOGIN NOINHERIT; END IF; END $$",
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
        f"'{MAINTENANCE_ROLE}') THEN CREATE ROLE {MAINTENANCE_ROLE} NOLOGIN; END IF; "
        f"IF NOT pg_has_role('{SERVICE_GROUP}', '{MAINTENANCE_ROLE}', 'MEMBER') THEN "
        f"GRANT {MAINTENANCE_ROLE} TO {SERVICE_GROUP}; END IF; END $$",
        # Workspaces provisioned before the maintenance role existed.
        f"""
        DO $$ DECLARE s text; BEGIN
            FOR s IN SELECT t.schema_name FROM public.tenants t
                      JOIN pg_namespace n ON n.nspname = t.schema_name
                     WHERE NOT has_schema_privilege('{MAINTENANCE_ROLE}', n.oid, 'USAGE') LOOP
                EXECUTE format('GRANT USAGE ON SCHEMA %I TO {MAINTENANCE_ROLE}', s);
                EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA %I '
                               'TO {MAINTENANCE_ROLE}', s);
                EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I '
                               'TO {MAINTENANCE_ROLE}', s);
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                               'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES '
                               'TO {MAINTENANCE_ROLE}', s);
                EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                               'GRANT USAGE, SELECT ON SEQUENCES TO {MAINTENANCE_ROLE}', s);
            END LOOP;
        END $$
        """,  # noqa: S608
        f"GRANT USAGE ON SCHEMA public TO {SERVICE_GROUP}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVICE_GROUP}",
        f"REVOKE INSERT, UPDATE, DELETE ON public.alembic_version FROM {SERVICE_GROUP}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SERVICE_GROUP}",
        # Every name interpolated here is a constant of this module or a hex digest.
        f"""
        CREATE OR REPLACE FUNCTION
            public.helpdesk_provision_tenant(p_schema text, p_role text, p_ddl text, p_head text)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
        AS $fn$
        BEGIN
            IF md5(p_head || E'\\n' || p_ddl) <> '{digest}' THEN
                RAISE EXCEPTION 'this tenant schema is not the one helpdesk migrate installed'
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'run helpdesk migrate with this version';
            END IF;
            IF NOT EXISTS (SELECT FROM public.tenants
                            WHERE schema_name = p_schema AND role_name = p_role) THEN
                RAISE EXCEPTION 'no workspace has schema % and role %', p_schema, p_role
                    USING ERRCODE = 'no_data_found';
            END IF;
            EXECUTE format('CREATE ROLE %I NOLOGIN IN ROLE {TENANT_GROUP}', p_role);
            EXECUTE format('GRANT %I TO CURRENT_USER', p_role);
            EXECUTE format('GRANT %I TO {SERVICE_GROUP}', p_role);
            EXECUTE format('CREATE SCHEMA %I', p_schema);
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', p_schema, p_role);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                           'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I',
                           p_schema, p_role);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                           'GRANT USAGE, SELECT ON SEQUENCES TO %I', p_schema, p_role);
            EXECUTE format('GRANT USAGE ON SCHEMA %I TO {MAINTENANCE_ROLE}', p_schema);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                           'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {MAINTENANCE_ROLE}',
                           p_schema);
            EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I '
                           'GRANT USAGE, SELECT ON SEQUENCES TO {MAINTENANCE_ROLE}', p_schema);
            PERFORM set_config('search_path', quote_ident(p_schema), true);
            EXECUTE p_ddl;
            EXECUTE 'INSERT INTO alembic_version (version_num) VALUES ($1)' USING p_head;
        END $fn$
        """,  # noqa: S608
        """
        CREATE OR REPLACE FUNCTION public.helpdesk_drop_tenant(p_schema text, p_role text)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
        AS $fn$
        BEGIN
            IF NOT EXISTS (SELECT FROM public.tenants
                            WHERE schema_name = p_schema AND role_name = p_role) THEN
                RAISE EXCEPTION 'no workspace has schema % and role %', p_schema, p_role
                    USING ERRCODE = 'no_data_found';
            END IF;
            EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', p_schema);
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = p_role) THEN
                EXECUTE format('DROP OWNED BY %I', p_role);
                EXECUTE format('DROP ROLE %I', p_role);
            END IF;
        END $fn$
        """,
        f"REVOKE ALL ON FUNCTION {PROVISION_FUNCTION}, {DROP_FUNCTION} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {PROVISION_FUNCTION}, {DROP_FUNCTION} TO {SERVICE_GROUP}",
        f"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA public TO {SERVICE_GROUP}",
    ]
    # psycopg's own cursor, without parameters: ``format('%I', ...)`` is not a placeholder.
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()


def may_migrate(engine: Engine) -> bool:
    """Whether ``engine``'s role can migrate: a superuser, the role (or a member of the role)
    that owns ``public``'s version table, or anyone on a database not migrated yet."""
    with engine.connect() as connection:
        allowed = connection.exec_driver_sql(
            "SELECT r.rolsuper OR c.oid IS NULL OR pg_has_role(current_user, c.relowner, 'USAGE')"
            " FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('public.alembic_version')"
            " WHERE r.rolname = current_user"
        ).scalar_one()
    return bool(allowed)


def public_is_current(engine: Engine) -> bool:
    heads = set(ScriptDirectory.from_config(public_config()).get_heads())
    with engine.connect() as connection:
        current = set(
            MigrationContext.configure(
                connection, opts={"version_table_schema": "public"}
            ).get_current_heads()
        )
    return current == heads
