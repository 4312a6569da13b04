"""Upgrading every tenant schema on the tenant track.

One query over every tenant's version table finds the schemas behind head; only those are
touched, several at a time, each in its own transaction with a ``lock_timeout``. A failure is
reported (tenant, revision, error) and leaves the other tenants upgraded; a second run resumes.
"""

import threading
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, MigrationInfo
from alembic.script import ScriptDirectory
from psycopg import sql
from sqlalchemy import Connection, Engine, select, text

from tenants.models import Tenant
from tenants.pool import pool_schemas
from tenants.schema import tenant_config, tenant_script

# Alembic's ``op`` and ``context`` are module-global proxies: two threads inside an
# EnvironmentContext at once run one tenant's operations on the other tenant's connection
# (measured: a duplicate column in one schema, a schema stamped at head without the column).
# Only the migration steps are serialised; connecting, locking and COMMIT still overlap.
_ALEMBIC_PROXIES = threading.Lock()


@dataclass(frozen=True, slots=True)
class TenantVersion:
    slug: str
    schema_name: str
    revision: str | None


@dataclass(frozen=True, slots=True)
class TenantMigrationResult:
    slug: str
    from_revision: str | None
    to_revision: str | None
    failed_revision: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def tenant_versions(
    connection: Connection, slugs: Iterable[str] | None = None
) -> list[TenantVersion]:
    """Every tenant's current revision, read with one statement over all version tables; with
    no ``slugs``, the schema pool's too (labelled ``pool:<schema>``, see tenants/pool.py)."""
    query = select(Tenant.slug, Tenant.schema_name).order_by(Tenant.slug)
    if slugs is not None:
        query = query.where(Tenant.slug.in_(list(slugs)))
    tenants: list[Any] = list(connection.execute(query).all())
    if slugs is None:
        # Ready schemas waiting to become workspaces stay at the head with them.
        tenants += pool_schemas(connection)
    if not tenants:
        return []
    branches = [
        sql.SQL("SELECT {slug} AS slug, (SELECT max(version_num) FROM {table}) AS revision").format(
            slug=sql.Literal(slug), table=sql.Identifier(schema, "alembic_version")
        )
        for slug, schema in tenants
    ]
    raw: Any = connection.connection.driver_connection
    with raw.cursor() as cur:
        rows = dict(cur.execute(sql.SQL(" UNION ALL ").join(branches)).fetchall())
    return [TenantVersion(slug, schema, rows.get(slug)) for slug, schema in tenants]


def upgrade_tenant(
    engine: Engine,
    version: TenantVersion,
    script: ScriptDirectory,
    *,
    target: str = "heads",
    lock_timeout_ms: int = 5000,
) -> TenantMigrationResult:
    applied: list[str] = []
    pending: list[str] = []
    config = tenant_config(*_extra_locations(script))

    def upgrade_steps(revision: Any, _context: Any) -> Any:
        return script._upgrade_revs(target, revision)

    def on_apply(
        ctx: MigrationContext,
        step: MigrationInfo,
        heads: Collection[Any],
        run_args: Mapping[str, Any],
    ) -> None:
        applied.append(str(step.up_revision_id))

    try:
        # Inside the try: a workspace stamped with a revision this code does not know (a rolled
        # back deploy) is that workspace's failure, not the whole run's.
        pending = [
            rev.revision
            for rev in reversed(list(script.iterate_revisions(target, version.revision or "base")))
        ]
        with engine.begin() as connection:
            connection.execute(
                text(
                    "SELECT set_config('search_path', quote_ident(:schema), true),"
                    " set_config('lock_timeout', :timeout, true)"
                ),
                {"schema": version.schema_name, "timeout": f"{lock_timeout_ms}ms"},
            )
            with (
                _ALEMBIC_PROXIES,
                EnvironmentContext(config, script, fn=upgrade_steps, destination_rev=target) as env,
            ):
                env.configure(
                    connection=connection,
                    version_table_schema=version.schema_name,
                    on_version_apply=on_apply,
                )
                with env.begin_transaction():
                    env.run_migrations()
    except Exception as exc:  # noqa: BLE001 - one tenant's failure is reported, not raised
        failed = next((rev for rev in pending if rev not in applied), None)
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return TenantMigrationResult(
            version.slug, version.revision, version.revision, failed, message
        )
    return TenantMigrationResult(
        version.slug, version.revision, applied[-1] if applied else version.revision
    )


def _extra_locations(script: ScriptDirectory) -> tuple[str, ...]:
    default = str(script.dir) + "/versions"
    return tuple(loc for loc in (script.version_locations or []) if str(loc) != default)


def migrate_tenants(
    engine: Engine,
    *,
    script: ScriptDirectory | None = None,
    slugs: Sequence[str] | None = None,
    concurrency: int = 4,
    on_result: Callable[[TenantMigrationResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> list[TenantMigrationResult]:
    """Upgrade every tenant (or ``slugs``) behind head; one result per tenant touched."""
    script = script or tenant_script()
    heads = set(script.get_heads())
    with engine.connect() as connection:
        behind = [v for v in tenant_versions(connection, slugs) if v.revision not in heads]
    if on_plan:
        on_plan(len(behind))
    results: list[TenantMigrationResult] = []

    def run(version: TenantVersion) -> TenantMigrationResult:
        result = upgrade_tenant(engine, version, script)
        if on_result:
            on_result(result)
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        results.extend(pool.map(run, behind))
    return results
