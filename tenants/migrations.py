"""Upgrading every tenant schema on the tenant track.

One query over every tenant's version table finds the schemas behind head; only those are
touched. They go in batches of ``batch_size`` workspaces, one transaction per batch, and
``concurrency`` threads, each with its own connection and its own alembic ``Operations``, work
through the batches. A workspace is upgraded under its advisory lock, and only if its version
row still holds the revision this run planned from; one that another run is upgrading, or has
upgraded since, is skipped, never upgraded twice. A failure rolls back its batch, whose
workspaces are then upgraded again one transaction each: the failure is reported (tenant,
revision, error) and the others are upgraded. A second run resumes.

The tenant track is linear (each workspace holds one version row, see ``tenant_versions``).
"""

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from alembic.operations import Operations
from alembic.script import Script, ScriptDirectory
from psycopg import sql
from sqlalchemy import Connection, Engine, select

from tenants.held_ddl import HeldDDL, operations_holding_ddl
from tenants.locks import LockKey
from tenants.models import Tenant
from tenants.pool import pool_schemas
from tenants.schema import VERSION_TABLE_DDL, tenant_script
from tenants.thread_op import bound_op, per_thread_op

# A batch holds the locks of every table its revisions alter (ACCESS EXCLUSIVE, for most DDL)
# until it commits, so a request to one of its workspaces may wait for the whole batch.
BATCH_SIZE = 50

BUSY = "another migration run is upgrading this workspace"
MOVED = "another migration run moved this workspace to {revision} after this run planned it"

# One statement claims a workspace: its scope, its lock, and its version row moved to the
# revision this run will reach. Stamped before the steps run, so a step that fails takes the
# stamp back with it. The version row is the compare-and-swap: a run that committed since this
# one planned (even after this statement's snapshot) has moved it, and PostgreSQL re-checks an
# updated row's newest version before changing it. A row comes back only when the lock was
# taken (set_config with it), so the steps never run in the wrong scope. Literals rather than
# parameters: it travels in one message with the previous workspace's DDL (tenants/held_ddl.py).
_CLAIM = sql.SQL(
    "WITH claim AS (SELECT set_config('search_path', quote_ident({schema}), true),"
    " pg_try_advisory_xact_lock(hashtext({schema}), {key}) AS locked)"
    " UPDATE {versions} SET version_num = {to} FROM claim"
    " WHERE claim.locked AND version_num = {from_} RETURNING version_num"
)
_WHY_NOT_CLAIMED = sql.SQL(
    "SELECT pg_try_advisory_xact_lock(hashtext(%(schema)s), %(key)s),"
    " (SELECT max(version_num) FROM {versions})"
)
_SCOPE_AND_LOCK = sql.SQL(
    "SELECT pg_try_advisory_xact_lock(hashtext(%(schema)s), %(key)s),"
    " set_config('search_path', quote_ident(%(schema)s), true)"
)
_FIRST_STAMP = (
    "INSERT INTO alembic_version (version_num) SELECT %(to)s"
    " WHERE NOT EXISTS (SELECT FROM alembic_version)"
)
_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %(timeout)s, true)"
_KEY = int(LockKey.TENANT_MIGRATION)


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
    skipped: str | None = None  # left to another run (``BUSY``, ``MOVED``); not a failure

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def upgraded(self) -> bool:
        return self.ok and self.skipped is None


@dataclass(frozen=True, slots=True)
class _Upgrade:
    version: TenantVersion
    steps: tuple[Script, ...]  # oldest first; never empty


class _StepFailed(Exception):
    def __init__(self, revision: str, cause: Exception) -> None:
        super().__init__(_first_line(cause))
        self.revision = revision


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
    """Upgrade one workspace, in a transaction of its own."""
    try:
        steps = _steps(script, version.revision, target)
    except Exception as exc:  # noqa: BLE001 - reported like any other workspace's failure
        return _unplanned(version, exc)
    if not steps:
        return TenantMigrationResult(version.slug, version.revision, version.revision)
    with per_thread_op():
        return _upgrade_batch(engine, [_Upgrade(version, steps)], lock_timeout_ms)[0]


def migrate_tenants(
    engine: Engine,
    *,
    script: ScriptDirectory | None = None,
    slugs: Sequence[str] | None = None,
    concurrency: int = 4,
    batch_size: int = BATCH_SIZE,
    lock_timeout_ms: int = 5000,
    on_result: Callable[[TenantMigrationResult], None] | None = None,
    on_plan: Callable[[int], None] | None = None,
) -> list[TenantMigrationResult]:
    """Upgrade every tenant (or ``slugs``) behind head; one result per tenant touched, in slug
    order. ``on_result`` hears of each one once its batch has committed."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    script = script or tenant_script()
    heads = set(script.get_heads())
    with engine.connect() as connection:
        behind = [v for v in tenant_versions(connection, slugs) if v.revision not in heads]
    if on_plan:
        on_plan(len(behind))

    def report(results: list[TenantMigrationResult]) -> list[TenantMigrationResult]:
        if on_result:
            for result in results:
                on_result(result)
        return results

    # Most workspaces stand at the same revision: their steps are worked out once.
    plans: dict[str | None, tuple[Script, ...] | Exception] = {}
    upgrades: list[_Upgrade] = []
    unplanned: list[TenantMigrationResult] = []
    for version in behind:
        if version.revision not in plans:
            try:
                plans[version.revision] = _steps(script, version.revision, "heads")
            except Exception as exc:  # noqa: BLE001 - a revision this code does not know
                plans[version.revision] = exc
        plan = plans[version.revision]
        if isinstance(plan, Exception):
            unplanned.append(_unplanned(version, plan))
        else:
            upgrades.append(_Upgrade(version, plan))
    results = report(unplanned)
    batches = [upgrades[n : n + batch_size] for n in range(0, len(upgrades), batch_size)]
    if batches:
        workers = max(1, min(concurrency, len(batches)))
        with per_thread_op(), ThreadPoolExecutor(max_workers=workers) as pool:
            for done in pool.map(
                lambda b: report(_upgrade_batch(engine, b, lock_timeout_ms)), batches
            ):
                results.extend(done)
    return sorted(results, key=lambda result: result.slug)


def _upgrade_batch(
    engine: Engine, batch: Sequence[_Upgrade], lock_timeout_ms: int
) -> list[TenantMigrationResult]:
    # Alone, each step's DDL is sent when the step ends, so an error names its revision.
    alone = len(batch) == 1
    try:
        with engine.connect() as connection, connection.begin():
            raw: Any = connection.connection.driver_connection
            raw.execute(_LOCK_TIMEOUT, {"timeout": f"{lock_timeout_ms}ms"})
            # Set up once for the batch: the operations name no schema (search_path chooses
            # it per workspace), so one context serves every workspace on this connection.
            operations, ddl = operations_holding_ddl(connection)
            results = [_upgrade_schema(raw, operations, ddl, upgrade, alone) for upgrade in batch]
            ddl.send()
            return results
    except Exception as exc:  # noqa: BLE001 - one tenant's failure is reported, not raised
        if not alone:
            # One workspace's failure (or the COMMIT's) rolled back the whole batch: each again
            # in a transaction of its own, so the failure stays with its workspace. A batch's
            # DDL reaches the server with the next workspace's claim, so the error may have
            # surfaced a workspace late; alone, it cannot.
            return [
                result
                for upgrade in batch
                for result in _upgrade_batch(engine, [upgrade], lock_timeout_ms)
            ]
        upgrade = batch[0]
        version = upgrade.version
        failed = exc.revision if isinstance(exc, _StepFailed) else upgrade.steps[0].revision
        return [
            TenantMigrationResult(
                version.slug, version.revision, version.revision, failed, _first_line(exc)
            )
        ]


def _upgrade_schema(
    raw: Any, operations: Operations, ddl: HeldDDL, upgrade: _Upgrade, alone: bool
) -> TenantMigrationResult:
    version = upgrade.version
    to = upgrade.steps[-1].revision
    versions = sql.Identifier(version.schema_name, "alembic_version")
    params = {"schema": version.schema_name, "key": _KEY, "from": version.revision, "to": to}
    if version.revision is None:
        ddl.send()
        skipped = _first_stamp(raw, params)
    else:
        claim = _CLAIM.format(
            versions=versions,
            schema=sql.Literal(version.schema_name),
            key=sql.Literal(_KEY),
            to=sql.Literal(to),
            from_=sql.Literal(version.revision),
        )
        skipped = None if ddl.send(claim).fetchone() else _why_not_claimed(raw, versions, params)
    if skipped:
        return TenantMigrationResult(
            version.slug, version.revision, version.revision, skipped=skipped
        )
    with bound_op(operations):
        for step in upgrade.steps:
            try:
                step.module.upgrade()
                if alone:
                    ddl.send()
            except Exception as exc:
                raise _StepFailed(step.revision, exc) from exc
    return TenantMigrationResult(version.slug, version.revision, to)


def _why_not_claimed(raw: Any, versions: sql.Identifier, params: dict[str, Any]) -> str:
    locked, current = raw.execute(_WHY_NOT_CLAIMED.format(versions=versions), params).fetchone()
    # Still at the planned revision with the lock free now: the other run rolled back. Left
    # for the next run all the same, which sees it behind again.
    return MOVED.format(revision=current) if locked and current != params["from"] else BUSY


def _first_stamp(raw: Any, params: dict[str, Any]) -> str | None:
    """Stamp a workspace that has no version yet (its version table, too, if it has none)."""
    locked, _ = raw.execute(_SCOPE_AND_LOCK, params).fetchone()
    if not locked:
        return BUSY
    if not raw.execute("SELECT to_regclass('alembic_version') IS NOT NULL").fetchone()[0]:
        raw.execute(VERSION_TABLE_DDL)
    if raw.execute(_FIRST_STAMP, params).rowcount != 1:
        current = raw.execute("SELECT max(version_num) FROM alembic_version").fetchone()[0]
        return MOVED.format(revision=current)
    return None


def _steps(script: ScriptDirectory, current: str | None, target: str) -> tuple[Script, ...]:
    """The revisions from ``current`` to ``target``, oldest first, each on the one before."""
    steps = tuple(reversed(list(script.iterate_revisions(target, current or "base"))))
    below = current
    for step in steps:
        if step.down_revision != below:
            raise ValueError(
                f"revision {step.revision} does not follow {below}: the tenant track must be "
                "linear (merge its branches first)"
            )
        below = step.revision
    return steps


def _unplanned(version: TenantVersion, exc: Exception) -> TenantMigrationResult:
    # A workspace stamped with a revision this code does not know (a rolled back deploy) is
    # that workspace's failure, not the whole run's.
    return TenantMigrationResult(
        version.slug, version.revision, version.revision, None, _first_line(exc)
    )


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
