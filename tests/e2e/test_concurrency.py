"""Tenant isolation under real concurrency, through a pool far smaller than the load.

Two connections serve 200 concurrent requests from 20 workspaces, directly and through PgBouncer
in transaction pooling mode. Every response must hold only its own workspace's rows, and every
connection must end with the server's default ``search_path`` and role: a ``SET`` that outlived
its transaction would show up there, on whichever request borrowed the connection next.
"""

import itertools
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import AsyncExitStack
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
from sqlalchemy import Connection, Engine, event, func, select, table, text

from helpdesk.app import create_app
from helpdesk.core.settings import Settings
from helpdesk.runtime import RequestPath, Runtime
from tests.support.factories import Factory, Workspace
from tests.support.live_server import LiveServer, live_server
from tests.support.pgbouncer import PgBouncer, PgBouncerUnavailable, running_pgbouncer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

POOL_SIZE = 2
WORKSPACES = 20
TICKETS_PER_WORKSPACE = 2
REQUESTS = 200
# At most the server's thread pool (anyio's 40 tokens): beyond it, requests blocked on a pool
# checkout can hold every thread a connection holder needs to finish, until pool_timeout.
CLIENT_THREADS = 32
# Guards against a hang only; nothing here measures speed.
HTTP_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
LOAD_TIMEOUT_SECONDS = 180.0
MISSING_TICKET = 999_999


@dataclass(frozen=True)
class Tenant:
    workspace: Workspace
    headers: dict[str, str]
    titles: dict[int, str]


@dataclass(frozen=True)
class Outcome:
    slug: str
    path: str
    status: int
    titles: list[str]


@dataclass(frozen=True)
class Served:
    runtime: Runtime
    server: LiveServer
    path: RequestPath
    bouncer: PgBouncer | None

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture
def pgbouncer(database_url: str) -> Iterator[PgBouncer]:
    try:
        with running_pgbouncer(database_url, pool_size=POOL_SIZE) as bouncer:
            yield bouncer
    except PgBouncerUnavailable as why:
        pytest.skip(str(why))


@pytest.fixture
def served(
    path: str, request: pytest.FixtureRequest, settings: Settings, database_url: str
) -> Iterator[Served]:
    """The app on its own two-connection pool, served by uvicorn over loopback."""
    update: dict[str, object] = {"pool_size": POOL_SIZE, "pool_max_overflow": 0}
    bouncer: PgBouncer | None = None
    url = database_url
    if path == "pgbouncer":
        bouncer = request.getfixturevalue("pgbouncer")
        url = bouncer.url()
        update["pgbouncer"] = True
    runtime = Runtime.connect(settings.model_copy(update=update), url)
    app = create_app(runtime)
    try:
        with live_server(app) as server:
            yield Served(runtime, server, app.state.request_path, bouncer)
    finally:
        runtime.engine.dispose()


def _seed(http: httpx.Client, factory: Factory, workspace: Workspace) -> Tenant:
    headers = factory.headers(workspace.admin, workspace)
    titles: dict[int, str] = {}
    for n in range(1, TICKETS_PER_WORKSPACE + 1):
        title = f"{workspace.slug} ticket {n}"
        response = http.post(
            "/api/v1/tickets",
            json={
                "title": title,
                "customer_email": f"c{n}@{workspace.slug.replace('_', '-')}.example.com",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        titles[response.json()["id"]] = title
    return Tenant(workspace, headers, titles)


def _request(http: httpx.Client, tenant: Tenant, kind: int) -> Outcome:
    # Ticket ids come from each schema's own sequence, so every workspace has the same ids:
    # a borrowed search_path would answer with the other workspace's row, not a 404.
    paths = [
        "/api/v1/tickets",
        *(f"/api/v1/tickets/{i}" for i in sorted(tenant.titles)),
        f"/api/v1/tickets/{MISSING_TICKET}",
    ]
    path = paths[kind % len(paths)]
    response = http.get(path, headers=tenant.headers)
    titles: list[str] = []
    if response.status_code == 200:
        body = response.json()
        titles = [item["title"] for item in body["items"]] if "items" in body else [body["title"]]
    return Outcome(tenant.workspace.slug, path, response.status_code, sorted(titles))


def _expected(tenant: Tenant, path: str) -> tuple[int, list[str]]:
    if path == "/api/v1/tickets":
        return 200, sorted(tenant.titles.values())
    ticket_id = int(path.rsplit("/", 1)[1])
    if ticket_id in tenant.titles:
        return 200, [tenant.titles[ticket_id]]
    return 404, []


def _audit_events(engine: Engine, schema: str) -> int:
    with engine.connect() as conn:
        count = conn.scalar(select(func.count()).select_from(table("audit_events", schema=schema)))
    return int(count or 0)


def _server_default_search_path(engine: Engine) -> str:
    with engine.connect() as conn:
        value = conn.scalar(text("SELECT reset_val FROM pg_settings WHERE name = 'search_path'"))
    return str(value)


def _session_state(conn: Connection) -> tuple[str, str, str, int]:
    search_path = str(conn.exec_driver_sql("SHOW search_path").scalar())
    row = conn.execute(text("SELECT current_user, session_user, pg_backend_pid()")).one()
    return search_path, str(row[0]), str(row[1]), int(row[2])


@pytest.mark.parametrize("path", ["direct", "pgbouncer"])
def test_concurrent_requests_stay_in_their_workspace_and_leave_pool_clean(
    path: str, served: Served, factory: Factory, runtime: Runtime
) -> None:
    # The request path's pool, opened by the app on the server's loop; no request has run yet.
    engine = served.path.engine.sync_engine
    opened: list[int] = []

    def count_connect(dbapi_connection: object, _record: object) -> None:
        opened.append(id(dbapi_connection))

    event.listen(engine, "connect", count_connect)
    workspaces = [factory.workspace() for _ in range(WORKSPACES)]

    with (
        httpx.Client(
            base_url=served.base_url,
            timeout=HTTP_TIMEOUT,
            limits=httpx.Limits(max_connections=CLIENT_THREADS),
        ) as http,
        ThreadPoolExecutor(CLIENT_THREADS, thread_name_prefix="client") as pool,
    ):
        tenants = list(pool.map(partial(_seed, http, factory), workspaces))
        by_slug = {t.workspace.slug: t for t in tenants}
        before = {
            t.workspace.slug: _audit_events(runtime.engine, t.workspace.schema_name)
            for t in tenants
        }

        # Round-robin over workspaces: requests submitted side by side, which run at the same
        # moment and take turns on the two connections, always belong to different workspaces.
        plan = list(zip(itertools.cycle(tenants), range(REQUESTS), strict=False))
        futures = [pool.submit(_request, http, tenant, n // WORKSPACES) for tenant, n in plan]
        _, unfinished = wait(futures, timeout=LOAD_TIMEOUT_SECONDS)
        if unfinished:
            pool.shutdown(wait=False, cancel_futures=True)
        assert not unfinished, f"{len(unfinished)} requests hung; see the captured server log"
        outcomes = [f.result() for f in futures]

    assert len(outcomes) == REQUESTS
    wrong = [o for o in outcomes if (o.status, o.titles) != _expected(by_slug[o.slug], o.path)]
    assert wrong == [], f"{len(wrong)} responses crossed workspaces or failed: {wrong[:5]}"
    assert Counter(o.status for o in outcomes).keys() == {200, 404}

    # A leaked search_path would also have written audit events into the wrong schema.
    ok = Counter(o.slug for o in outcomes if o.status == 200)
    for tenant in tenants:
        slug, schema = tenant.workspace.slug, tenant.workspace.schema_name
        assert _audit_events(runtime.engine, schema) == before[slug] + ok[slug], slug

    # The pool never grew past its size, and checking out POOL_SIZE connections opens none:
    # the connections inspected below are exactly the ones that served the load.
    assert len(opened) == POOL_SIZE, opened
    default_path = _server_default_search_path(runtime.engine)

    async def pooled_states() -> list[tuple[str, str, str, int]]:
        async with AsyncExitStack() as stack:
            held = [
                await stack.enter_async_context(served.path.engine.connect())
                for _ in range(POOL_SIZE)
            ]
            return [await conn.run_sync(_session_state) for conn in held]

    states = served.server.call(pooled_states())
    servers = served.bouncer.show("SERVERS") if served.bouncer else []
    assert len(opened) == POOL_SIZE, opened
    assert len({pid for *_, pid in states}) == POOL_SIZE, states
    for search_path, current_user, session_user, _pid in states:
        assert search_path == default_path, states
        assert current_user == session_user, states
    if served.bouncer is not None:
        config = {r["key"]: r["value"] for r in served.bouncer.show("CONFIG")}
        assert (config["pool_mode"], config["server_reset_query"]) == ("transaction", "")
        # Both app connections held a transaction at once, so each sat on its own server
        # connection; PgBouncer's pool has no others, so every server connection was checked.
        remote = {r["remote_pid"] for r in servers if r["database"] == served.bouncer.dbname}
        assert remote == {pid for *_, pid in states}, (servers, states)


def test_pool_reset_undoes_a_session_level_tenant_scope(
    settings: Settings, database_url: str, factory: Factory, runtime: Runtime
) -> None:
    """The second line of defence on its own: a tenant scope set for the session, not the
    transaction, is gone when the connection comes back from the pool (direct connections
    only: behind PgBouncer the next transaction may run on another server connection)."""
    workspace = factory.workspace()
    single = Runtime.connect(
        settings.model_copy(update={"pool_size": 1, "pool_max_overflow": 0}), database_url
    )
    try:
        with single.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT set_config('search_path', :path, false),"
                    " set_config('role', :role, false)"
                ),
                {"path": workspace.schema_name, "role": workspace.role_name},
            )
            # Committed, so only the pool reset can undo it (a rollback would revert the SETs).
            conn.commit()
            leaked = _session_state(conn)
        with single.engine.connect() as conn:
            after = _session_state(conn)
    finally:
        single.engine.dispose()
    assert leaked[0] == workspace.schema_name
    assert leaked[1] == workspace.role_name
    assert after[3] == leaked[3], "the pool handed out another connection"
    assert after[0] == _server_default_search_path(runtime.engine)
    assert after[1] == after[2], f"role {after[1]!r} survived the pool reset"
