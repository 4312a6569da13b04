"""The harness's roles on a shared server: made per run, and gone at its end.

Roles are cluster-wide, so on a server given by ``TEST_DATABASE_URL`` they would outlive the
run's databases. This plays a whole run in miniature on this run's server: bootstrap a run's
owner and service roles, migrate a database as the owner, provision a workspace as the service,
drop the database, then ``drop_run_roles``: no role of that run may be left.
"""

import uuid

import psycopg
import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from helpdesk.core.db import transaction
from helpdesk.migrate import upgrade_public
from migrations.models import tenant_ddl
from tenants.provisioning import provision_tenant
from tests.support.factories import unique_slug
from tests.support.postgres import (
    RunRoles,
    create_run_roles,
    drop_database,
    drop_run_roles,
    recreate_database,
    sqlalchemy_url,
)

pytestmark = pytest.mark.integration


def _roles_named(admin_url: str, names: list[str]) -> list[str]:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) ORDER BY 1", (names,)
        ).fetchall()
    return [str(row[0]) for row in rows]


def test_a_run_drops_its_owner_service_and_every_tenant_role_it_made(
    pg_info: dict[str, str],
) -> None:
    admin_url = pg_info["admin_url"]
    prefix = f"hd_roles_{uuid.uuid4().hex[:8]}"
    roles = RunRoles.for_prefix(prefix)
    database = f"{prefix}_db"
    slug = unique_slug("runrole")
    url = make_url(admin_url).set(database=database).render_as_string(hide_password=False)
    create_run_roles(admin_url, roles)
    try:
        recreate_database(admin_url, database, owner=roles.owner)
        owner = create_engine(sqlalchemy_url(roles.owner_url(url)))
        service = create_engine(sqlalchemy_url(roles.service_url(url)))
        try:
            upgrade_public(owner)
            with transaction(sessionmaker(service)) as session:
                tenant = provision_tenant(session, slug=slug, name="Run roles", ddl=tenant_ddl())
                tenant_role = tenant.role_name
        finally:
            owner.dispose()
            service.dispose()
        assert _roles_named(admin_url, [roles.owner, roles.service, tenant_role]) == sorted(
            [roles.owner, roles.service, tenant_role]
        )
    finally:
        drop_database(admin_url, database)
        left = drop_run_roles(admin_url, roles)
    assert left == []
    assert _roles_named(admin_url, [roles.owner, roles.service, tenant_role]) == []
