"""A tenant schema as the catalog describes it, for proving two ways of building one agree.

One query per aspect, each row ordered so two schemas compare as lists, and every name of the
schema and of its role replaced by ``<tenant>``: the schema built by running every tenant
migration and one built another way (the DDL at head, a claimed pool schema) carry different
names and must otherwise be equal. Column order is left out on purpose: ADD COLUMN appends, so
a migrated table legitimately lists its columns in another order than the model declares them.
"""

import re
from typing import Any

from psycopg import sql
from sqlalchemy import Engine, text

_ROLE_OID = "(SELECT oid FROM pg_roles WHERE rolname = :role)"


def _acl(column: str) -> str:
    return f"array_to_string(ARRAY(SELECT unnest({column})::text ORDER BY 1), ' ')"


CATALOG: dict[str, str] = {
    "schema": f"""
        SELECT n.nspname, pg_get_userbyid(n.nspowner), {_acl("n.nspacl")},
               obj_description(n.oid, 'pg_namespace')
          FROM pg_namespace n
         WHERE n.nspname = :schema""",
    "relations": """
        SELECT c.relname, c.relkind, c.relpersistence
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema
         ORDER BY 1""",
    "owners": """
        SELECT c.relname, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity,
               c.reloptions::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema
         ORDER BY 1""",
    "columns": """
        SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_get_expr(d.adbin, d.adrelid), a.attgenerated, co.collname
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          LEFT JOIN pg_collation co ON co.oid = a.attcollation
         WHERE n.nspname = :schema AND c.relkind IN ('r', 'p')
           AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY 1, 2""",
    "constraints": """
        SELECT c.relname, con.conname, con.contype, pg_get_constraintdef(con.oid),
               con.condeferrable, con.condeferred, con.convalidated
          FROM pg_constraint con
          JOIN pg_class c ON c.oid = con.conrelid
          JOIN pg_namespace n ON n.oid = con.connamespace
         WHERE n.nspname = :schema
         ORDER BY 1, 2""",
    "indexes": """
        SELECT ic.relname, pg_get_indexdef(i.indexrelid)
          FROM pg_index i
          JOIN pg_class ic ON ic.oid = i.indexrelid
          JOIN pg_namespace n ON n.oid = ic.relnamespace
         WHERE n.nspname = :schema
         ORDER BY 1""",
    "identities": """
        SELECT c.relname, a.attname, a.attidentity, format_type(s.seqtypid, NULL), s.seqstart,
               s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          JOIN pg_depend dep ON dep.refobjid = c.oid AND dep.refobjsubid = a.attnum
                            AND dep.classid = 'pg_class'::regclass AND dep.deptype = 'i'
          JOIN pg_sequence s ON s.seqrelid = dep.objid
         WHERE n.nspname = :schema AND a.attidentity <> ''
         ORDER BY 1, 2""",
    # Tables' and sequences' privileges. The append-only audit trail rests on these: the
    # workspace role must lose UPDATE and DELETE on audit_events whichever way it was built.
    "privileges": f"""
        SELECT c.relname, {_acl("c.relacl")}
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema
         ORDER BY 1""",
    "column_privileges": f"""
        SELECT c.relname, a.attname, {_acl("a.attacl")}
          FROM pg_attribute a
          JOIN pg_class c ON c.oid = a.attrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema AND a.attacl IS NOT NULL
         ORDER BY 1, 2""",
    # In the schema, and the role's own anywhere.
    "default_privileges": f"""
        SELECT coalesce(n.nspname, '-'), pg_get_userbyid(d.defaclrole), d.defaclobjtype,
               {_acl("d.defaclacl")}
          FROM pg_default_acl d LEFT JOIN pg_namespace n ON n.oid = d.defaclnamespace
         WHERE n.nspname = :schema OR d.defaclrole = {_ROLE_OID}
         ORDER BY 1, 2, 3""",
    # In the schema's tables, and any policy anywhere that names the role.
    "policies": """
        SELECT n.nspname = :schema, c.relname, p.polname, p.polcmd, p.polpermissive,
               ARRAY(SELECT pg_get_userbyid(r) FROM unnest(p.polroles) r ORDER BY 1)::text,
               pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
          FROM pg_policy p
          JOIN pg_class c ON c.oid = p.polrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema
            OR (SELECT oid FROM pg_roles WHERE rolname = :role) = ANY(p.polroles)
         ORDER BY 1, 2, 3""",
    "functions": f"""
        SELECT p.proname, pg_get_function_identity_arguments(p.oid), pg_get_userbyid(p.proowner),
               p.prosrc, p.prosecdef, p.proconfig::text, {_acl("p.proacl")}
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE n.nspname = :schema
         ORDER BY 1, 2""",
    "triggers": """
        SELECT c.relname, t.tgname, pg_get_triggerdef(t.oid), t.tgenabled
          FROM pg_trigger t
          JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema AND NOT t.tgisinternal
         ORDER BY 1, 2""",
    "comments": """
        SELECT c.relname, d.objsubid, d.description
          FROM pg_description d
          JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
          JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = :schema
         ORDER BY 1, 2""",
    "role": """
        SELECT r.rolname, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
               r.rolcanlogin, r.rolreplication, r.rolbypassrls, r.rolconnlimit,
               r.rolconfig::text,
               ARRAY(SELECT s.setconfig::text FROM pg_db_role_setting s
                      WHERE s.setrole = r.oid ORDER BY 1)::text
          FROM pg_roles r
         WHERE r.rolname = :role""",
    # Which groups the role is in and who may act as it, with the options of each grant.
    "memberships": f"""
        SELECT pg_get_userbyid(m.roleid), pg_get_userbyid(m.member), pg_get_userbyid(m.grantor),
               m.admin_option, m.inherit_option, m.set_option
          FROM pg_auth_members m
         WHERE m.roleid = {_ROLE_OID} OR m.member = {_ROLE_OID}
         ORDER BY 1, 2, 3""",
}
ASPECTS = tuple(CATALOG)
# What every tenant schema has: two empty lists would compare equal, so these must not be empty.
DESCRIBED = frozenset(
    {
        "schema",
        "relations",
        "owners",
        "columns",
        "constraints",
        "indexes",
        "identities",
        "privileges",
        "default_privileges",
        "role",
        "memberships",
    }
)

Snapshot = dict[str, list[tuple[Any, ...]]]


def _normalise(value: Any, names: tuple[str, ...]) -> Any:
    """Catalog text names the schema (index definitions, foreign keys) and the role (ACLs)."""
    if not isinstance(value, str):
        return value
    for name in names:
        value = re.sub(rf"\b{re.escape(name)}\b", "<tenant>", value)
    return value


def snapshot(engine: Engine, schema: str, role: str) -> Snapshot:
    names = (schema, role)
    with engine.connect() as conn:
        return {
            aspect: [
                tuple(_normalise(value, names) for value in row)
                for row in conn.execute(text(query), {"schema": schema, "role": role})
            ]
            for aspect, query in CATALOG.items()
        }


def empty_schema(engine: Engine, schema: str) -> None:
    """Drop every table of a provisioned workspace, leaving its row, role, schema grants and
    default privileges: the workspace as it stood before any tenant migration."""
    with engine.begin() as conn:
        tables = conn.scalars(
            text("SELECT tablename FROM pg_tables WHERE schemaname = :s ORDER BY 1"),
            {"s": schema},
        ).all()
        raw: Any = conn.connection.driver_connection
        names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
        raw.execute(sql.SQL("DROP TABLE {} CASCADE").format(names))
