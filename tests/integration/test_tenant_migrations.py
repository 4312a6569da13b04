"""Upgrading many workspaces on the tenant track: one statement finds who is behind, only they
are touched, in batches of several per transaction; one workspace's failure is reported without
stopping or corrupting the others, a second run resumes, and two runs at once never upgrade a
workspace twice.

The revision under test lives in ``tests/fixtures/tenant_revisions``, never in ``migrations/``:
the other tests of this worker's database know only the real track, so every workspace moved
onto the fixture revision here is dropped before the test ends.
"""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import Engine, text

from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from migrations.models import tenant_ddl
from tenants.locks import LockKey
from tenants.migrations import (
    BUSY,
    MOVED,
    TenantMigrationResult,
    TenantVersion,
    migrate_tenants,
    tenant_versions,
    upgrade_tenant,
)
from tenants.provisioning import drop_tenant, provision_tenant
from tenants.registry import get_by_slug
from tenants.schema import tenant_head, tenant_script
from tenants.slugs import schema_name
from tests.support.factories import unique_slug

pytestmark = pytest.mark.integration

FIXTURE_REVISIONS = Path(__file__).resolve().parents[1] / "fixtures" / "tenant_revisions"
# The name the fixture revision gives its index; sabotage creates it first.
EXTRA_INDEX = "ix_tickets_external_ref"

Provision = Callable[[int], list[str]]


@pytest.fixture
def extra_script() -> ScriptDirectory:
    return tenant_script(str(FIXTURE_REVISIONS))


@pytest.fixture
def extra_head(extra_script: ScriptDirectory) -> str:
    head = extra_script.get_current_head()
    assert head is not None
    assert head != tenant_head()
    return head


@pytest.fixture
def provision(runtime: Runtime) -> Iterator[Provision]:
    """Provision ``count`` workspaces at the real head; drop every one of them afterwards."""
    made: list[str] = []

    def make(count: int) -> list[str]:
        prefix = unique_slug("mig")
        slugs = [f"{prefix}_{n:02d}" for n in range(count)]
        for slug in slugs:
            with transaction(runtime.sessions) as session:
                provision_tenant(session, slug=slug, name=f"Workspace {slug}", ddl=tenant_ddl())
            made.append(slug)
        return slugs

    yield make
    for slug in made:
        with transaction(runtime.sessions) as session:
            drop_tenant(session, get_by_slug(session, slug))


def _run(engine: Engine, statement: sql.Composable) -> None:
    with engine.begin() as conn:
        raw: Any = conn.connection.driver_connection
        raw.execute(statement)


def _versions(engine: Engine, slugs: list[str]) -> dict[str, str | None]:
    with engine.connect() as conn:
        return {v.slug: v.revision for v in tenant_versions(conn, slugs)}


def _has_extra_column_and_index(engine: Engine, slugs: list[str]) -> dict[str, tuple[bool, bool]]:
    """What each schema really holds, read from the catalog rather than from its stamp."""
    schemas = {schema_name(slug): slug for slug in slugs}
    with engine.connect() as conn:
        columns = set(
            conn.scalars(
                text(
                    "SELECT table_schema FROM information_schema.columns "
                    "WHERE table_name = 'tickets' AND column_name = 'external_ref' "
                    "AND table_schema = ANY(:schemas)"
                ),
                {"schemas": list(schemas)},
            )
        )
        indexes = set(
            conn.scalars(
                text(
                    "SELECT schemaname FROM pg_indexes WHERE indexname = :index "
                    "AND indexdef LIKE '%(external_ref)' AND schemaname = ANY(:schemas)"
                ),
                {"index": EXTRA_INDEX, "schemas": list(schemas)},
            )
        )
    return {slug: (schema in columns, schema in indexes) for schema, slug in schemas.items()}


def _version_row_xmins(engine: Engine, slugs: list[str]) -> dict[str, str]:
    """The transaction that last wrote each version row; upgrading a workspace changes it."""
    branches = [
        sql.SQL("SELECT {slug}, xmin::text FROM {table}").format(
            slug=sql.Literal(slug), table=sql.Identifier(schema_name(slug), "alembic_version")
        )
        for slug in slugs
    ]
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        return dict(raw.execute(sql.SQL(" UNION ALL ").join(branches)).fetchall())


@pytest.mark.slow
def test_fan_out_reports_the_one_failure_and_a_rerun_resumes(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory, extra_head: str
) -> None:
    engine, head = runtime.engine, tenant_head()
    slugs = provision(30)
    sabotaged = slugs[17]
    healthy = [slug for slug in slugs if slug != sabotaged]
    # An index already holding the revision's index name: its CREATE INDEX fails in this one
    # workspace, after its ADD COLUMN has run in the same transaction.
    _run(
        engine,
        sql.SQL("CREATE INDEX {} ON {} (title)").format(
            sql.Identifier(EXTRA_INDEX), sql.Identifier(schema_name(sabotaged), "tickets")
        ),
    )

    planned: list[int] = []
    reported: list[TenantMigrationResult] = []
    results = migrate_tenants(
        engine,
        script=extra_script,
        slugs=slugs,
        concurrency=4,
        on_result=reported.append,
        on_plan=planned.append,
    )

    assert planned == [30]
    assert sorted(r.slug for r in results) == sorted(r.slug for r in reported) == sorted(slugs)
    failed = [r for r in results if not r.ok]
    assert [(r.slug, r.from_revision, r.to_revision, r.failed_revision) for r in failed] == [
        (sabotaged, head, head, extra_head)
    ]
    error = failed[0].error or ""
    assert EXTRA_INDEX in error
    assert "already exists" in error
    assert {(r.from_revision, r.to_revision) for r in results if r.ok} == {(head, extra_head)}
    # Stamps and contents agree in every schema: the failed one kept neither its new column
    # nor a half-applied revision, and no workspace received another's operations.
    assert _versions(engine, slugs) == {
        slug: head if slug == sabotaged else extra_head for slug in slugs
    }
    assert _has_extra_column_and_index(engine, slugs) == {
        slug: (False, False) if slug == sabotaged else (True, True) for slug in slugs
    }

    _run(
        engine,
        sql.SQL("DROP INDEX {}").format(sql.Identifier(schema_name(sabotaged), EXTRA_INDEX)),
    )
    untouched = _version_row_xmins(engine, healthy)
    planned.clear()
    rerun = migrate_tenants(
        engine, script=extra_script, slugs=slugs, concurrency=4, on_plan=planned.append
    )

    assert planned == [1]
    assert rerun == [TenantMigrationResult(sabotaged, head, extra_head)]
    assert _version_row_xmins(engine, healthy) == untouched
    assert set(_versions(engine, slugs).values()) == {extra_head}
    assert set(_has_extra_column_and_index(engine, slugs).values()) == {(True, True)}

    planned.clear()
    assert migrate_tenants(engine, script=extra_script, slugs=slugs, on_plan=planned.append) == []
    assert planned == [0]


@pytest.fixture
def sent_statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent through psycopg from now on.

    Patched on psycopg's cursor rather than with a SQLAlchemy ``before_cursor_execute`` event:
    ``tenant_versions`` sends its union through the driver connection, which events never see.
    """
    sent: list[str] = []
    original = psycopg.Cursor.execute

    def execute(self: psycopg.Cursor[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query if isinstance(query, str) else repr(query))
        return original(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    return sent


def test_tenant_versions_reads_every_version_table_in_one_statement(
    runtime: Runtime,
    provision: Provision,
    extra_script: ScriptDirectory,
    extra_head: str,
    sent_statements: list[str],
) -> None:
    engine, head = runtime.engine, tenant_head()
    slugs = provision(12)
    ahead, unstamped = slugs[:3], slugs[3]
    for slug in ahead:
        result = upgrade_tenant(engine, TenantVersion(slug, schema_name(slug), head), extra_script)
        assert result.ok, result.error
    _run(
        engine,
        sql.SQL("DELETE FROM {}").format(sql.Identifier(schema_name(unstamped), "alembic_version")),
    )
    expected = [
        TenantVersion(
            slug,
            schema_name(slug),
            extra_head if slug in ahead else None if slug == unstamped else head,
        )
        for slug in sorted(slugs)
    ]

    unions: dict[int, int] = {}
    totals: dict[int, int] = {}
    with engine.connect() as conn:
        for subset in (slugs[:2], slugs):
            sent_statements.clear()
            versions = tenant_versions(conn, subset)
            unions[len(subset)] = sum("alembic_version" in s for s in sent_statements)
            totals[len(subset)] = len(sent_statements)
            assert versions == [v for v in expected if v.slug in subset]

    # One statement reads every version table, and the round trips do not grow with tenants.
    assert unions == {2: 1, 12: 1}
    assert totals[2] == totals[12]


def test_a_workspace_at_an_unknown_revision_is_reported_not_raised(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory
) -> None:
    # A workspace moved onto a revision this code does not have: a rolled-back deploy, or
    # another build's fixture revision, seen through the real track's script.
    stranger, normal = provision(2)
    upgraded = upgrade_tenant(
        runtime.engine, TenantVersion(stranger, schema_name(stranger), tenant_head()), extra_script
    )
    assert upgraded.ok, upgraded.error
    results = migrate_tenants(runtime.engine, slugs=[stranger, normal])
    assert [(r.slug, r.ok) for r in results] == [(stranger, False)]
    assert upgraded.to_revision is not None
    assert upgraded.to_revision in (results[0].error or "")


def test_one_failing_workspace_leaves_the_rest_of_its_batch_upgraded(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory, extra_head: str
) -> None:
    engine, head = runtime.engine, tenant_head()
    slugs = provision(6)
    sabotaged = slugs[2]
    _run(
        engine,
        sql.SQL("CREATE INDEX {} ON {} (title)").format(
            sql.Identifier(EXTRA_INDEX), sql.Identifier(schema_name(sabotaged), "tickets")
        ),
    )
    reported: list[TenantMigrationResult] = []

    # One batch holds all six: the failure comes after two workspaces of it were upgraded.
    results = migrate_tenants(
        engine,
        script=extra_script,
        slugs=slugs,
        concurrency=1,
        batch_size=len(slugs),
        on_result=reported.append,
    )

    assert results == sorted(reported, key=lambda r: r.slug)
    assert [(r.slug, r.upgraded, r.failed_revision) for r in results] == [
        (slug, slug != sabotaged, extra_head if slug == sabotaged else None) for slug in slugs
    ]
    assert "already exists" in (results[2].error or "")
    assert _versions(engine, slugs) == {
        slug: head if slug == sabotaged else extra_head for slug in slugs
    }
    assert _has_extra_column_and_index(engine, slugs) == {
        slug: (False, False) if slug == sabotaged else (True, True) for slug in slugs
    }


def test_a_batch_of_workspaces_is_upgraded_in_one_transaction(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory
) -> None:
    slugs = provision(5)
    results = migrate_tenants(
        runtime.engine, script=extra_script, slugs=slugs, concurrency=2, batch_size=3
    )
    assert all(r.upgraded for r in results)
    # Each version row was last written by its batch's transaction: three, then two.
    writers = _version_row_xmins(runtime.engine, slugs)
    assert len({writers[slug] for slug in slugs[:3]}) == 1
    assert len({writers[slug] for slug in slugs[3:]}) == 1
    assert writers[slugs[0]] != writers[slugs[3]]


def test_a_workspace_another_run_holds_is_skipped_and_a_rerun_upgrades_it(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory, extra_head: str
) -> None:
    engine, head = runtime.engine, tenant_head()
    slugs = provision(3)
    held = slugs[1]
    with engine.connect() as other_run, other_run.begin():
        # What another migration run holds while it upgrades this workspace.
        other_run.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:schema), :key)"),
            {"schema": schema_name(held), "key": int(LockKey.TENANT_MIGRATION)},
        )
        results = migrate_tenants(engine, script=extra_script, slugs=slugs, batch_size=3)
    assert [(r.slug, r.ok, r.skipped) for r in results] == [
        (slug, True, BUSY if slug == held else None) for slug in slugs
    ]
    assert _versions(engine, slugs) == {
        slug: head if slug == held else extra_head for slug in slugs
    }
    assert _has_extra_column_and_index(engine, [held]) == {held: (False, False)}

    rerun = migrate_tenants(engine, script=extra_script, slugs=slugs)
    assert rerun == [TenantMigrationResult(held, head, extra_head)]


def test_a_workspace_upgraded_after_this_run_planned_is_not_upgraded_again(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory, extra_head: str
) -> None:
    engine = runtime.engine
    slugs = provision(4)
    other: list[TenantMigrationResult] = []

    def another_run_finishes_first(_behind: int) -> None:
        other.extend(migrate_tenants(engine, script=extra_script, slugs=slugs))

    results = migrate_tenants(
        engine, script=extra_script, slugs=slugs, on_plan=another_run_finishes_first
    )

    assert [r.slug for r in other if r.upgraded] == slugs
    assert [(r.slug, r.ok, r.skipped) for r in results] == [
        (slug, True, MOVED.format(revision=extra_head)) for slug in slugs
    ]
    assert set(_has_extra_column_and_index(engine, slugs).values()) == {(True, True)}
    assert set(_versions(engine, slugs).values()) == {extra_head}


@pytest.mark.slow
def test_two_runs_at_once_upgrade_each_workspace_exactly_once(
    runtime: Runtime, provision: Provision, extra_script: ScriptDirectory, extra_head: str
) -> None:
    engine = runtime.engine
    slugs = provision(12)
    # Both runs read every workspace at the old head before either upgrades one.
    both_planned = threading.Barrier(2, timeout=60)
    runs: list[list[TenantMigrationResult]] = [[], []]

    def wait_for_the_other(_behind: int) -> None:
        both_planned.wait()

    def run(n: int) -> None:
        runs[n] = migrate_tenants(
            engine,
            script=extra_script,
            slugs=slugs,
            concurrency=2,
            batch_size=2,
            on_plan=wait_for_the_other,
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    every = [result for results in runs for result in results]
    assert len(every) == 2 * len(slugs)
    assert [r for r in every if not r.ok] == []
    assert sorted(r.slug for r in every if r.upgraded) == sorted(slugs)
    assert {r.skipped for r in every if not r.upgraded} <= {BUSY, MOVED.format(revision=extra_head)}
    assert set(_has_extra_column_and_index(engine, slugs).values()) == {(True, True)}
    assert set(_versions(engine, slugs).values()) == {extra_head}
