"""The schema pool: a claimed schema is the one every tenant migration builds, concurrent
provisionings never claim the same one, an empty (or unusable) pool falls back to building,
pool schemas are no workspaces to anything that lists, counts or works them, and the migration
fan-out keeps them at the head. Provisioning runs as the service role, as the app does; the
owner's engine looks behind it."""

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from alembic.runtime.environment import EnvironmentContext
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from psycopg import sql
from sqlalchemy import Engine, func, select, text

from helpdesk.core.db import transaction
from helpdesk.metrics import worker_registry
from helpdesk.runtime import Runtime
from helpdesk.worker.loop import Worker
from helpdesk.worker.schedule import FILL_SCHEMA_POOL, default_schedule
from helpdesk.workspaces.service import list_workspaces
from migrations.models import TENANT_METADATA, tenant_ddl
from tenants.jobs import Job, run_each_workspace
from tenants.locks import LockKey
from tenants.migrations import TenantVersion, migrate_tenants, upgrade_tenant
from tenants.models import Tenant, TenantStatus
from tenants.pool import POOL_LABEL_PREFIX, drain_pool, fill_pool
from tenants.provisioning import drop_tenant, provision_tenant
from tenants.registry import get_by_slug
from tenants.schema import tenant_config, tenant_head, tenant_script
from tenants.slugs import role_name, schema_name
from tests.support.catalog import ASPECTS, DESCRIBED, Snapshot, empty_schema, snapshot
from tests.support.factories import Factory, unique_slug
from tests.support.pool import fill, filled_pool, pool_names

pytestmark = pytest.mark.integration


def provision(runtime: Runtime, slug: str) -> None:
    with transaction(runtime.sessions) as session:
        provision_tenant(session, slug=slug, name=f"Workspace {slug}", ddl=tenant_ddl())


def drop(runtime: Runtime, slug: str) -> None:
    with transaction(runtime.sessions) as session:
        drop_tenant(session, get_by_slug(session, slug))


def schema_oid(engine: Engine, schema: str) -> int | None:
    with engine.connect() as conn:
        oid: int | None = conn.scalar(
            text("SELECT oid::bigint FROM pg_namespace WHERE nspname = :n"), {"n": schema}
        )
    return oid


def revision_of(engine: Engine, schema: str) -> str | None:
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        table = sql.Identifier(schema, "alembic_version")
        row = raw.execute(sql.SQL("SELECT max(version_num) FROM {}").format(table)).fetchone()
    return row[0] if row else None


def role_exists(engine: Engine, role: str) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": role})
        )


# --- (a) A claimed schema is the schema every tenant migration builds ---------------------------


@dataclass(frozen=True)
class ClaimedAndMigrated:
    claimed: Snapshot
    migrated: Snapshot
    claimed_stamp: str | None
    pool_schema_left: bool
    pool_role_left: bool


@pytest.fixture(scope="module")
def claimed_and_migrated(
    service_runtime: Runtime, runtime: Runtime
) -> Iterator[ClaimedAndMigrated]:
    by_migrations, claimed = unique_slug("mig"), unique_slug("claim")
    drain_pool(service_runtime.sessions)
    provision(service_runtime, by_migrations)
    try:
        empty_schema(runtime.engine, schema_name(by_migrations))
        result = upgrade_tenant(
            runtime.engine,
            TenantVersion(by_migrations, schema_name(by_migrations), None),
            tenant_script(),
        )
        assert result.ok, result.error
        with filled_pool(service_runtime, 1) as [ready]:
            ready_oid = schema_oid(runtime.engine, ready)
            provision(service_runtime, claimed)
            # The pool's schema itself, renamed: not one built beside it.
            assert schema_oid(runtime.engine, schema_name(claimed)) == ready_oid
            assert pool_names(service_runtime) == []
        yield ClaimedAndMigrated(
            snapshot(runtime.engine, schema_name(claimed), role_name(claimed)),
            snapshot(runtime.engine, schema_name(by_migrations), role_name(by_migrations)),
            revision_of(runtime.engine, schema_name(claimed)),
            schema_oid(runtime.engine, ready) is not None,
            role_exists(runtime.engine, ready),
        )
    finally:
        drop(service_runtime, by_migrations)
        drop(service_runtime, claimed)


@pytest.mark.parametrize("aspect", ASPECTS)
def test_a_claimed_schema_equals_the_migrated_one(
    claimed_and_migrated: ClaimedAndMigrated, aspect: str
) -> None:
    if aspect in DESCRIBED:
        assert claimed_and_migrated.claimed[aspect]
    assert claimed_and_migrated.claimed[aspect] == claimed_and_migrated.migrated[aspect]


def test_a_claimed_schema_keeps_no_pool_name(claimed_and_migrated: ClaimedAndMigrated) -> None:
    assert claimed_and_migrated.claimed_stamp == tenant_head()
    assert not claimed_and_migrated.pool_schema_left
    assert not claimed_and_migrated.pool_role_left


def test_a_claimed_workspace_is_usable_by_its_role(
    service_runtime: Runtime, runtime: Runtime
) -> None:
    """Grants follow the renamed role: the workspace's role reads its tables and sees its own
    row in public.tenants (row-level security keyed on the role's new name)."""
    slug = unique_slug("use")
    with filled_pool(service_runtime, 1):
        factory = Factory(service_runtime)
        ws = factory.workspace(slug)
        assert pool_names(service_runtime) == []
    try:
        with runtime.engine.connect() as conn:
            conn.execute(
                text(
                    "SELECT set_config('search_path', quote_ident(:s) || ', public', true),"
                    " set_config('role', :r, true)"
                ),
                {"s": ws.schema_name, "r": ws.role_name},
            )
            assert conn.scalar(text("SELECT count(*) FROM tickets")) == 0
            assert conn.scalars(text("SELECT slug FROM public.tenants")).all() == [slug]
    finally:
        drop(service_runtime, slug)


# --- (b) Concurrent provisionings never claim the same schema -----------------------------------


def test_concurrent_provisionings_never_claim_the_same_schema(
    service_runtime: Runtime, runtime: Runtime
) -> None:
    ready_count, provisionings = 4, 8
    slugs = [unique_slug("race") for _ in range(provisionings)]
    start = threading.Barrier(provisionings)

    def provision_at_once(slug: str) -> None:
        start.wait()
        provision(service_runtime, slug)

    try:
        with filled_pool(service_runtime, ready_count) as ready:
            ready_oids = {schema_oid(runtime.engine, name) for name in ready}
            # Each on its own connection of the service's pool (4 + 5 overflow): all at once.
            with ThreadPoolExecutor(provisionings) as threads:
                list(threads.map(provision_at_once, slugs))
            left = pool_names(service_runtime)
        oids = [schema_oid(runtime.engine, schema_name(slug)) for slug in slugs]
    finally:
        for slug in slugs:
            drop(service_runtime, slug)
    assert len(ready_oids) == ready_count
    assert left == []
    # Every ready schema went to exactly one workspace; the others were built.
    assert sorted(oid for oid in oids if oid in ready_oids) == sorted(ready_oids)  # type: ignore[type-var]
    assert len(set(oids)) == provisionings
    assert None not in oids


# --- (c) An empty or unusable pool falls back to building ---------------------------------------


def test_an_empty_pool_falls_back_to_building(service_runtime: Runtime, runtime: Runtime) -> None:
    drain_pool(service_runtime.sessions)
    slug = unique_slug("empty")
    provision(service_runtime, slug)
    try:
        assert revision_of(runtime.engine, schema_name(slug)) == tenant_head()
        with runtime.engine.connect() as conn:
            tables = set(
                conn.scalars(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = :s"),
                    {"s": schema_name(slug)},
                )
            )
        assert tables == {*TENANT_METADATA.tables, "alembic_version"}
    finally:
        drop(service_runtime, slug)


def _set_revision(engine: Engine, schema: str, revision: str) -> None:
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        table = sql.Identifier(schema, "alembic_version")
        raw.execute(sql.SQL("UPDATE {} SET version_num = %s").format(table), (revision,))


def test_a_pool_schema_behind_the_head_is_left_for_the_migrations(
    service_runtime: Runtime, runtime: Runtime
) -> None:
    slug = unique_slug("behind")
    with filled_pool(service_runtime, 1) as [ready]:
        _set_revision(runtime.engine, ready, "t0001")
        provision(service_runtime, slug)
        try:
            assert schema_oid(runtime.engine, schema_name(slug)) != schema_oid(
                runtime.engine, ready
            )
            assert pool_names(service_runtime) == [ready]
        finally:
            drop(service_runtime, slug)


def test_a_pool_schema_being_migrated_is_not_waited_for(
    service_runtime: Runtime, runtime: Runtime
) -> None:
    """A migration holds the version table it read until it commits: provisioning builds
    rather than wait behind it (or rename the schema under it)."""
    slug = unique_slug("busy")
    with filled_pool(service_runtime, 1) as [ready], runtime.engine.connect() as migration:
        raw: Any = migration.connection.driver_connection
        table = sql.Identifier(ready, "alembic_version")
        raw.execute(sql.SQL("SELECT version_num FROM {}").format(table))
        try:
            provision(service_runtime, slug)
            assert schema_oid(runtime.engine, schema_name(slug)) != schema_oid(
                runtime.engine, ready
            )
            assert pool_names(service_runtime) == [ready]
        finally:
            raw.rollback()
            drop(service_runtime, slug)


# --- (d) Pool schemas are no workspaces ---------------------------------------------------------


def _all_pages(client: TestClient, headers: dict[str, str]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/platform/tenants", params=params, headers=headers)
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return items


def test_pool_schemas_are_in_no_workspace_list_count_or_job(
    service_runtime: Runtime, factory: Factory, client: TestClient
) -> None:
    operator = factory.headers(factory.operator(), None)
    factory.workspace()  # so that the lists below are not empty either way
    before = _all_pages(client, operator)
    with filled_pool(service_runtime, 2) as ready:
        listed = _all_pages(client, operator)
        with transaction(service_runtime.sessions) as session:
            served = list_workspaces(session, after=None, limit=100_000)
            counted = session.scalar(select(func.count()).select_from(Tenant))
        every_status = frozenset(TenantStatus)
        visited: Job[str] = Job(
            "probe", LockKey.ESCALATION, lambda run: run.tenant.schema_name, 1, every_status
        )
        report = run_each_workspace(service_runtime.sessions, visited)
    assert len(ready) == 2
    assert listed == before
    assert {t.schema_name for t in served} == {schema_name(w["slug"]) for w in listed}
    assert counted == len(listed)
    # The one runner every job goes through (escalation, auto-close, delivery, retention).
    assert sorted(report.results) == sorted(schema_name(w["slug"]) for w in listed)
    assert not set(ready) & set(report.results)


# --- (e) Pool schemas are migrated with the workspaces ------------------------------------------


def _downgrade(engine: Engine, schema: str, target: str) -> None:
    """Take ``schema`` back to ``target`` on the real track, as an older release built it."""
    script = tenant_script()

    def steps(revision: Any, _context: Any) -> Any:
        return script._downgrade_revs(target, revision)

    with engine.begin() as connection:
        connection.execute(
            text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": schema}
        )
        with EnvironmentContext(tenant_config(), script, fn=steps, destination_rev=target) as env:
            env.configure(connection=connection, version_table_schema=schema)
            with env.begin_transaction():
                env.run_migrations()


def test_pool_schemas_are_migrated_with_the_workspaces(
    service_runtime: Runtime, runtime: Runtime
) -> None:
    head = tenant_head()
    previous = tenant_script().get_revision(head).down_revision
    assert isinstance(previous, str)
    slug = unique_slug("after")
    with filled_pool(service_runtime, 2) as ready:
        for name in ready:
            _downgrade(runtime.engine, name, previous)
            assert revision_of(runtime.engine, name) == previous
        results = migrate_tenants(runtime.engine)
        by_label = {r.slug: r for r in results}
        for name in ready:
            outcome = by_label[POOL_LABEL_PREFIX + name]
            assert outcome.ok, outcome.error
            assert (outcome.from_revision, outcome.to_revision) == (previous, head)
            assert revision_of(runtime.engine, name) == head
        # At the head again, so the next provisioning claims the oldest.
        provision(service_runtime, slug)
        try:
            assert schema_oid(runtime.engine, schema_name(slug)) is not None
            assert pool_names(service_runtime) == ready[1:]
        finally:
            drop(service_runtime, slug)


# --- The fill job ------------------------------------------------------------------------------


def test_the_service_cannot_write_the_pool_registry(service_runtime: Runtime) -> None:
    """A row there decides which schema a new workspace is given: only the owner's functions
    write one, so the service cannot hand a workspace's schema to another."""
    with (
        pytest.raises(Exception, match="permission denied") as raised,
        transaction(service_runtime.sessions) as session,
    ):
        session.execute(
            text(
                "INSERT INTO public.schema_pool (schema_name, role_name)"
                " VALUES ('tenant_someone', 'tenant_someone')"
            )
        )
    assert isinstance(raised.value.orig, psycopg.errors.InsufficientPrivilege)  # type: ignore[attr-defined]


def _fill_worker(service_runtime: Runtime, size: int) -> Worker:
    settings = service_runtime.settings.model_copy(update={"schema_pool_size": size})
    runtime = Runtime(
        settings, service_runtime.database_url, service_runtime.engine, service_runtime.sessions
    )
    [job] = [job for job in default_schedule(runtime) if job.name == FILL_SCHEMA_POOL]
    return Worker([job])


def test_the_worker_fills_the_pool_to_its_size_and_shows_its_depth(
    service_runtime: Runtime,
) -> None:
    drain_pool(service_runtime.sessions)
    try:
        worker = _fill_worker(service_runtime, 3)
        [job] = worker.jobs
        worker.run_once(job)
        assert len(pool_names(service_runtime)) == 3
        exposition = generate_latest(worker_registry(worker.stats)).decode()
        assert 'helpdesk_schema_pool_depth{moment="run_start"} 0.0' in exposition
        assert 'helpdesk_schema_pool_depth{moment="run_end"} 3.0' in exposition
        assert "helpdesk_schema_pool_built_total 3.0" in exposition
        assert f'helpdesk_job_failures_total{{job="{FILL_SCHEMA_POOL}"}} 0.0' in exposition

        # A lowered size drops the newest beyond it.
        oldest = pool_names(service_runtime)[0]
        worker = _fill_worker(service_runtime, 1)
        worker.run_once(worker.jobs[0])
        assert pool_names(service_runtime) == [oldest]
    finally:
        drain_pool(service_runtime.sessions)


@pytest.mark.parametrize(
    ("size", "slugs", "scheduled"),
    [(5, None, True), (0, None, False), (5, ["some_workspace"], False)],
    ids=["default", "size_0_disables", "worker_for_chosen_workspaces"],
)
def test_the_fill_job_is_scheduled_unless_disabled(
    runtime: Runtime, size: int, slugs: list[str] | None, scheduled: bool
) -> None:
    settings = runtime.settings.model_copy(update={"schema_pool_size": size})
    schedule = default_schedule(
        Runtime(settings, runtime.database_url, runtime.engine, runtime.sessions), slugs=slugs
    )
    assert (FILL_SCHEMA_POOL in [job.name for job in schedule]) is scheduled


def test_a_second_filler_leaves_the_pool_to_the_first(service_runtime: Runtime) -> None:
    """Two processes filling at once would both build the last schema the pool needs."""
    drain_pool(service_runtime.sessions)
    try:
        with transaction(service_runtime.sessions) as holder:
            holder.execute(
                text("SELECT pg_advisory_xact_lock(:k)"), {"k": int(LockKey.SCHEMA_POOL)}
            )
            second = fill(service_runtime, 2)
        assert second.busy
        assert (second.built, pool_names(service_runtime)) == (0, [])
        first = fill(service_runtime, 2)
        assert (first.busy, first.built, first.depth) == (False, 2, 2)
    finally:
        drain_pool(service_runtime.sessions)


def test_stopping_ends_a_fill_between_two_schemas(service_runtime: Runtime) -> None:
    drain_pool(service_runtime.sessions)
    asked: list[int] = []

    def stop_after_one() -> bool:
        asked.append(1)
        return len(asked) > 1

    try:
        done = fill_pool(
            service_runtime.sessions,
            size=3,
            ddl=tenant_ddl(),
            head=tenant_head(),
            stopping=stop_after_one,
        )
        assert (done.built, done.depth) == (1, 1)
    finally:
        drain_pool(service_runtime.sessions)
