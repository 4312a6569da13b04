"""Fail-closed database roles (DESIGN.md "Defence in depth, fail-closed"), seen from PostgreSQL.

The app logs in as a service role that is no superuser, owns nothing and reaches a workspace's
tables only by ``SET LOCAL ROLE`` to the workspace's role. These tests watch that from the
database's side, inside real requests through the app:

- a trigger the owner puts on a workspace's ``tickets`` records ``current_user`` and
  ``session_user`` in the request's own transaction: the workspace's role, logged in as the
  service (the pipeline forgetting its ``set_config('role', ...)`` fails it, and every request);
- the service role on its own, without ``SET ROLE``, gets ``permission denied`` on that table;
- after a request, its pooled connection is back to the service role and the default
  ``search_path`` *without* the pool's reset handler (which would hide a session-level ``SET``):
  only ``SET LOCAL`` (``set_config(..., true)``) ends with the transaction. This is what catches
  ``set_config(..., false)`` on every machine, PgBouncer or not.
"""

from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from helpdesk.app import create_app
from helpdesk.core import db as core_db
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime
from tests.support.factories import Workspace
from tests.support.postgres import RunRoles

pytestmark = pytest.mark.e2e

TICKETS = "/api/v1/tickets"
TICKET = {"title": "Whose hands", "customer_email": "pat@example.com"}


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def witnessed(owner_engine: Engine, ws: Workspace) -> str:
    """A trigger on ``ws``'s tickets that writes down who inserted each row; yields the log's
    qualified name. Created by the owner, so the workspace's role may write the log (the
    schema's default privileges) and the trigger runs as whoever inserts (SECURITY INVOKER)."""
    schema = f'"{ws.schema_name}"'
    log = f"{schema}.test_whoami"
    with owner_engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {log} (current_role_name text, session_role_name text,"
                " search_path text, xact bigint)"
            )
        )
        conn.execute(
            text(
                f"CREATE FUNCTION {schema}.test_whoami() RETURNS trigger LANGUAGE plpgsql AS $$"
                f" BEGIN INSERT INTO {log} VALUES (current_user, session_user,"
                " current_setting('search_path'), txid_current()); RETURN NEW; END $$"
            )
        )
        conn.execute(
            text(
                f"CREATE TRIGGER test_whoami AFTER INSERT ON {schema}.tickets"
                f" FOR EACH ROW EXECUTE FUNCTION {schema}.test_whoami()"
            )
        )
    return log


def test_a_request_runs_as_its_workspaces_role_logged_in_as_the_service(
    client: TestClient,
    admin: dict[str, str],
    ws: Workspace,
    witnessed: str,
    owner_engine: Engine,
    run_roles: RunRoles,
) -> None:
    response = client.post(TICKETS, json=TICKET, headers=admin)
    assert response.status_code == 201, response.text

    with owner_engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT current_role_name, session_role_name, search_path FROM {witnessed}")
        ).all()
    assert len(rows) == 1
    current_role, session_role, search_path = rows[0]
    assert current_role == ws.role_name
    assert session_role == run_roles.service
    assert search_path.split(",")[0].strip().strip('"') == ws.schema_name


def test_the_service_role_alone_is_denied_a_workspaces_table(
    database_url: str, ws: Workspace, run_roles: RunRoles
) -> None:
    """What a request that forgot its ``SET LOCAL ROLE`` would meet."""
    with psycopg.connect(_libpq(database_url)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (run_roles.service,)
        conn.execute(
            "SELECT set_config('search_path', quote_ident(%s) || ', public', true)",
            (ws.schema_name,),
        )
        # A schema the role may not use drops out of its search_path: the name finds nothing.
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT count(*) FROM tickets")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(f'SELECT count(*) FROM "{ws.schema_name}".tickets')
        conn.rollback()
        # With its role, the same connection reads the same table.
        conn.execute("SELECT set_config('role', %s, true)", (ws.role_name,))
        assert conn.execute(f'SELECT count(*) FROM "{ws.schema_name}".tickets').fetchone() == (0,)


def test_the_service_role_is_no_superuser_owns_nothing_and_inherits_no_workspace(
    owner_engine: Engine, ws: Workspace, run_roles: RunRoles
) -> None:
    with owner_engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb,"
                " (SELECT count(*) FROM pg_class WHERE relowner = r.oid)"
                " + (SELECT count(*) FROM pg_namespace WHERE nspowner = r.oid)"
                " + (SELECT count(*) FROM pg_proc WHERE proowner = r.oid)"
                " + (SELECT count(*) FROM pg_type WHERE typowner = r.oid) AS owned,"
                " pg_has_role(r.oid, :tenant, 'MEMBER') AS may_set_role,"
                " pg_has_role(r.oid, :tenant, 'USAGE') AS inherits,"
                " has_schema_privilege(r.oid, :schema, 'USAGE') AS schema_usage"
                " FROM pg_roles r WHERE r.rolname = :service"
            ),
            {"tenant": ws.role_name, "schema": ws.schema_name, "service": run_roles.service},
        ).one()
    assert (row.rolsuper, row.rolcreaterole, row.rolcreatedb) == (False, False, False)
    assert row.owned == 0
    assert row.may_set_role is True
    assert row.inherits is False
    assert row.schema_usage is False


@pytest.fixture
def unguarded_client(settings: Settings, database_url: str) -> Iterator[TestClient]:
    """An app on a one-connection pool whose reset handler (``RESET ROLE`` and ``RESET ALL``
    when a connection goes back) is taken away, so what a request leaves on its connection
    stays there for the test to see."""
    narrow = settings.model_copy(
        update={"pool_size": 1, "pool_max_overflow": 0, "workspace_pool_share": 1.0}
    )
    runtime = Runtime.connect(narrow, database_url)
    try:
        with TestClient(create_app(runtime), base_url="http://testserver") as test_client:
            engine: AsyncEngine = test_client.app.state.request_path.engine  # type: ignore[attr-defined]
            event.remove(engine.sync_engine, "reset", core_db._reset_connection)
            yield test_client
    finally:
        runtime.engine.dispose()


def test_a_request_leaves_its_connection_as_the_service_with_the_default_path(
    unguarded_client: TestClient,
    admin: dict[str, str],
    ws: Workspace,
    run_roles: RunRoles,
) -> None:
    engine: AsyncEngine = unguarded_client.app.state.request_path.engine  # type: ignore[attr-defined]

    async def state() -> tuple[str, str, int]:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    text("SELECT current_user, current_setting('search_path'), pg_backend_pid()")
                )
            ).one()
            return str(row[0]), str(row[1]), int(row[2])

    before = unguarded_client.portal.call(state)  # type: ignore[union-attr]
    assert before[0] == run_roles.service
    response = unguarded_client.post(TICKETS, json=TICKET, headers=admin)
    assert response.status_code == 201, response.text
    response = unguarded_client.get(TICKETS, headers=admin)
    assert response.status_code == 200, response.text
    after = unguarded_client.portal.call(state)  # type: ignore[union-attr]
    # The same pooled connection (one in the pool), back as it was: SET LOCAL ended with the
    # request's transaction. A session-level SET would have left the workspace's role here.
    assert after[2] == before[2]
    assert (after[0], after[1]) == (before[0], before[1])
    assert ws.schema_name not in after[1]
