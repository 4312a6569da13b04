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

from audit.schema_sql import REVOKE_AUDIT_REWRITES_PLPGSQL
from helpdesk.database import MAINTENANCE_ROLE, SERVICE_GROUP, TENANT_GROUP
from migrations import PUBLIC_DIR
from migrations.models import tenant_ddl
from tenants.locks import LockKey, lock_platform
from tenants.pool import POOL_NAME_PATTERN
from tenants.schema import tenant_head

PROVISION_FUNCTION = "public.helpdesk_provision_tenant(text, text, text, text)"
DROP_FUNCTION = "public.helpdesk_drop_tenant(text, text)"
BUILD_POOL_FUNCTION = "public.helpdesk_build_pool_schema(text, text, text)"
DROP_POOL_FUNCTION = "public.helpdesk_drop_pool_schema()"
LIFECYCLE_FUNCTIONS = ", ".join(
    (PROVISION_FUNCTION, DROP_FUNCTION, BUILD_POOL_FUNCTION, DROP_POOL_FUNCTION)
)

# PL/pgSQL over ``p_schema``, ``p_role``, ``p_ddl`` and ``p_head``: the role, the schema, their
# grants and default privileges (before any table, see tenants/provisioning.py), then the tables
# and the version stamp. A workspace built from scratch and a pool schema are built by this text.
_BUILD_SCHEMA = f"""
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
            EXECUTE 'INSERT INTO alembic_version (version_num) VALUES ($1)' USING p_head;"""  # noqa: S608


def _check_ddl(digest: str) -> str:
    """PL/pgSQL refusing any ``p_ddl``/``p_head`` but the ones this code version installed."""
    return f"""IF md5(p_head || E'\\n' || p_ddl) <> '{digest}' THEN
                RAISE EXCEPTION 'this tenant schema is not the one helpdesk migrate installed'
                    USING ERRCODE = 'object_not_in_prerequisite_state',
                          HINT = 'run helpdesk migrate with this version';
            END IF;"""


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
        # A pool row decides which schema a new workspace is given: only the owner's functions
        # below write one, or a service that wrote a workspace's schema there could hand it on.
        f"REVOKE INSERT, UPDATE, DELETE ON public.schema_pool FROM {SERVICE_GROUP}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SERVICE_GROUP}",
        # Every name interpolated here is a constant of this module or a hex digest.
        f"""
        CREATE OR REPLACE FUNCTION
            public.helpdesk_provision_tenant(p_schema text, p_role text, p_ddl text, p_head text)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
        AS $fn$
        DECLARE
            v_ready public.schema_pool;
            v_revision text;
        BEGIN
            {_check_ddl(digest)}
            IF NOT EXISTS (SELECT FROM public.tenants
                            WHERE schema_name = p_schema AND role_name = p_role) THEN
                RAISE EXCEPTION 'no workspace has schema % and role %', p_schema, p_role
                    USING ERRCODE = 'no_data_found';
            END IF;
            -- A ready schema from the pool if one is free: SKIP LOCKED, so a concurrent
            -- provisioning takes another one or builds, and never waits for this one.
            SELECT * INTO v_ready FROM public.schema_pool
             ORDER BY created_at, schema_name LIMIT 1 FOR UPDATE SKIP LOCKED;
            IF FOUND THEN
                BEGIN
                    -- A migration of this schema under way has read its version table and
                    -- holds it until it commits: build instead of waiting for it, and keep
                    -- it from starting until this transaction has renamed the schema.
                    EXECUTE format('LOCK TABLE %I.alembic_version IN ACCESS EXCLUSIVE MODE NOWAIT',
                                   v_ready.schema_name);
                    EXECUTE format('SELECT max(version_num) FROM %I.alembic_version',
                                   v_ready.schema_name) INTO v_revision;
                EXCEPTION WHEN lock_not_available THEN
                    v_revision := NULL;
                END;
                -- A pool schema behind this code's head (migrate has not reached it) is left
                -- for the migration fan-out.
                IF v_revision = p_head THEN
                    DELETE FROM public.schema_pool WHERE schema_name = v_ready.schema_name;
                    -- Grants, default privileges, ownership and memberships hold OIDs, not
                    -- names, and nothing in a tenant schema spells its own name: renaming the
                    -- two is all it takes (tests/integration/test_schema_pool.py compares).
                    EXECUTE format('ALTER SCHEMA %I RENAME TO %I', v_ready.schema_name, p_schema);
                    EXECUTE format('ALTER ROLE %I RENAME TO %I', v_ready.role_name, p_role);
                    RETURN;
                END IF;
            END IF;
            {_BUILD_SCHEMA}
        END $fn$
        """,  # noqa: S608
        f"""
        CREATE OR REPLACE FUNCTION
            public.helpdesk_build_pool_schema(p_name text, p_ddl text, p_head text)
        RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
        AS $fn$
        DECLARE
            p_schema text := p_name;
            p_role text := p_name;
        BEGIN
            {_check_ddl(digest)}
            IF p_name !~ '^{POOL_NAME_PATTERN}$' THEN
                RAISE EXCEPTION 'a pool schema is named pool_ and 16 hex digits, not %', p_name
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            INSERT INTO public.schema_pool (schema_name, role_name) VALUES (p_schema, p_role);
            {_BUILD_SCHEMA}
            {REVOKE_AUDIT_REWRITES_PLPGSQL}
        END $fn$
        """,  # noqa: S608
        """
        CREATE OR REPLACE FUNCTION public.helpdesk_drop_pool_schema()
        RETURNS text LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
        AS $fn$
        DECLARE
            v_ready public.schema_pool;
        BEGIN
            -- The newest free one: the oldest are the next to be claimed.
            SELECT * INTO v_ready FROM public.schema_pool
             ORDER BY created_at DESC, schema_name DESC LIMIT 1 FOR UPDATE SKIP LOCKED;
            IF NOT FOUND THEN
                RETURN NULL;
            END IF;
            DELETE FROM public.schema_pool WHERE schema_name = v_ready.schema_name;
            EXECUTE format('DROP SCHEMA IF EXISTS %I CASCADE', v_ready.schema_name);
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = v_ready.role_name) THEN
                EXECUTE format('DROP OWNED BY %I', v_ready.role_name);
                EXECUTE format('DROP ROLE %I', v_ready.role_name);
            END IF;
            RETURN v_ready.schema_name;
        END $fn$
        """,
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
        f"REVOKE ALL ON FUNCTION {LIFECYCLE_FUNCTIONS} FROM PUBLIC",
        f"GRANT EXECUTE ON FUNCTION {LIFECYCLE_FUNCTIONS} TO {SERVICE_GROUP}",
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
