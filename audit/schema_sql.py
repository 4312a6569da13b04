"""DDL that the models cannot express, applied by the tenant migration and by provisioning.

Migration t0003 runs this text as it stands: change it only together with a new migration."""

# The application reaches a workspace under the workspace's role; that role may only append to
# the audit trail. Retention and GDPR erasure touch it under the owner role, on purpose.
APPEND_ONLY_AUDIT = """
DO $$
DECLARE tenant_role text;
BEGIN
    SELECT role_name INTO tenant_role FROM public.tenants WHERE schema_name = current_schema();
    IF tenant_role IS NOT NULL THEN
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints FROM %I',
            tenant_role
        );
    END IF;
END $$
"""

TENANT_EXTRA_DDL = (APPEND_ONLY_AUDIT,)

# The same refusal for a role named outright, as PL/pgSQL over a variable ``p_role``: a schema
# built for the schema pool has no row in public.tenants yet, so APPEND_ONLY_AUDIT finds no role
# there, and the pool's build function (helpdesk/migrate.py) revokes with this instead.
REVOKE_AUDIT_REWRITES_PLPGSQL = (
    "EXECUTE format('REVOKE UPDATE, DELETE, TRUNCATE ON audit_events, audit_checkpoints "
    "FROM %I', p_role);"
)
