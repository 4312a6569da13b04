"""Provisioning N workspaces, then migrating one new tenant revision across all of them.

    python -m bench.provisioning [--tenants 1000] [--concurrency 4] [--batch-size 50]
                                 [--database-url URL]

Starts its own embedded PostgreSQL in a temporary directory (or connects to --database-url, a
server on which it may create databases and roles), creates a fresh database, migrates public,
then provisions the workspaces one transaction each with ``provision_tenant`` and prints the
per-workspace time (p50, p95, max) for the first hundred, the last hundred and all of them: a
statement that scans the whole catalog shows as a last hundred slower than the first.
It then times the floor: the fixture revision's change in ``tests/fixtures/tenant_revisions`` (a
column and an index on tickets) sent as raw SQL to every workspace over one connection, which it
then undoes; migrates that revision across every workspace with ``migrate_tenants``, printing
workspaces per second and the ratio to the floor; and times a second run that has nothing to
do. Everything it made is removed on exit: the embedded server and its directory, or the
database and the roles on the given server.
"""

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import make_url

from helpdesk.core.db import make_engine, make_sessionmaker, transaction
from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.core.settings import Settings
from helpdesk.migrate import upgrade_public
from migrations.models import tenant_ddl
from tenants.migrations import BATCH_SIZE, TenantMigrationResult, migrate_tenants, tenant_versions
from tenants.models import Tenant
from tenants.provisioning import TENANT_GROUP_ROLE, provision_tenant
from tenants.schema import tenant_head, tenant_script
from tenants.slugs import role_name, schema_name

FIXTURE_REVISIONS = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tenant_revisions"
WINDOW = 100
# What fx0001 creates, mirrored by ``raw_sql_floor``; dropping the column drops the index too.
FIXTURE_INDEX = "ix_tickets_external_ref"


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def with_database(url: str, database: str) -> str:
    parsed = make_url(url).set(drivername="postgresql+psycopg", database=database)
    return parsed.render_as_string(hide_password=False)


@contextmanager
def server(database_url: str | None) -> Iterator[str]:
    """The address of a server to work on: the one given, or an embedded one made for this run."""
    if database_url:
        yield database_url
        return
    home = Path(tempfile.mkdtemp(prefix="helpdesk-bench-"))
    try:
        embedded = EmbeddedPostgres(home / "pgdata", delete_on_stop=True)
        try:
            yield embedded.libpq_url()
        finally:
            embedded.stop()
    finally:
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def fresh_database(admin_url: str, slug_prefix: str) -> Iterator[str]:
    """A new database for this run; dropped afterwards with the cluster-wide roles it made."""
    name = f"bench_provisioning_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
        group_existed = bool(
            conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (TENANT_GROUP_ROLE,)
            ).fetchone()
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            # Roles outlive the database: drop this run's (its slugs share a unique prefix).
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s)",
                (role_name(slug_prefix),),
            ).fetchall()
            for (role,) in roles:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            if not group_existed:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(TENANT_GROUP_ROLE))
                )


def describe(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms   (n={len(ordered)})"
    )


def provision_all(engine: Engine, slugs: Sequence[str]) -> list[float]:
    sessions = make_sessionmaker(engine)
    timings: list[float] = []
    for n, slug in enumerate(slugs, start=1):
        started = time.perf_counter()
        with transaction(sessions) as session:
            provision_tenant(session, slug=slug, name=f"Bench {slug}", ddl=tenant_ddl())
        timings.append(time.perf_counter() - started)
        if n % WINDOW == 0 or n == len(slugs):
            print(f"  {n:6d} provisioned   last {min(WINDOW, n)}: {describe(timings[-WINDOW:])}")
    return timings


def migrate(
    engine: Engine, concurrency: int, batch_size: int, label: str
) -> tuple[list[TenantMigrationResult], float]:
    planned: list[int] = []
    started = time.perf_counter()
    results = migrate_tenants(
        engine,
        script=tenant_script(str(FIXTURE_REVISIONS)),
        concurrency=concurrency,
        batch_size=batch_size,
        on_plan=planned.append,
    )
    elapsed = time.perf_counter() - started
    failed = [r for r in results if not r.ok]
    print(
        f"{label}: {planned[0]} workspaces behind head, {sum(r.upgraded for r in results)} upgraded, "
        f"{len(failed)} failed, in {elapsed:.2f} s"
    )
    for result in failed[:5]:
        print(f"  failed: {result.slug} at {result.failed_revision}: {result.error}")
    return results, elapsed


def raw_sql_floor(url: str, schemas: Sequence[str]) -> float:
    """Seconds to send the fixture revision's DDL to every schema as raw SQL over one
    connection: both statements in one round trip and one transaction per schema, nothing else.
    The change is then undone (untimed), so the migration that follows starts where this did."""
    statements = [
        sql.SQL(
            "ALTER TABLE {tickets} ADD COLUMN external_ref VARCHAR(64);"
            " CREATE INDEX {index} ON {tickets} (external_ref)"
        ).format(tickets=sql.Identifier(schema, "tickets"), index=sql.Identifier(FIXTURE_INDEX))
        for schema in schemas
    ]
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        started = time.perf_counter()
        for statement in statements:
            conn.execute(statement)
        elapsed = time.perf_counter() - started
        for schema in schemas:
            conn.execute(
                sql.SQL("ALTER TABLE {} DROP COLUMN external_ref").format(
                    sql.Identifier(schema, "tickets")
                )
            )
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument(
        "--database-url",
        help="a server to create a fresh database (and roles) on, instead of an embedded server",
    )
    args = parser.parse_args()
    prefix = f"b{uuid.uuid4().hex[:6]}"
    slugs = [f"{prefix}_{n:05d}" for n in range(args.tenants)]
    extra_head = tenant_script(str(FIXTURE_REVISIONS)).get_current_head()

    with server(args.database_url) as admin_url, fresh_database(admin_url, prefix) as url:
        settings = Settings(database_url=url, pool_size=args.concurrency + 1, pool_max_overflow=0)
        engine = make_engine(url, settings)
        try:
            with engine.connect() as conn:
                version = conn.execute(text("SHOW server_version")).scalar_one()
            print(
                f"PostgreSQL {version}; {args.tenants} workspaces; concurrency {args.concurrency};"
                f" {args.batch_size} workspaces per migration batch"
            )
            upgrade_public(engine)

            print(f"\nProvisioning, one transaction per workspace (tenant head {tenant_head()}):")
            started = time.perf_counter()
            timings = provision_all(engine, slugs)
            total = time.perf_counter() - started
            print(f"  first {WINDOW:4d}: {describe(timings[:WINDOW])}")
            print(f"  last  {WINDOW:4d}: {describe(timings[-WINDOW:])}")
            print(f"  all   {len(timings):4d}: {describe(timings)}")
            print(f"  total {total:.1f} s, {len(timings) / total:.1f} workspaces/s")

            print(f"\nMigrating {tenant_head()} -> {extra_head} across every workspace:")
            floor = raw_sql_floor(url, [schema_name(slug) for slug in slugs])
            print(f"  raw-SQL floor, one connection: {args.tenants} workspaces in {floor:.2f} s")
            results, elapsed = migrate(engine, args.concurrency, args.batch_size, "  first run")
            print(f"  {len(results) / elapsed:.1f} workspaces/s, {elapsed / floor:.2f}x the floor")
            _, noop = migrate(
                engine, args.concurrency, args.batch_size, "  second run (nothing to do)"
            )
            print(f"  {noop * 1000:.1f} ms for the no-op run over {args.tenants} workspaces")

            with engine.connect() as conn:
                at_head = sum(v.revision == extra_head for v in tenant_versions(conn))
                registered = conn.scalar(select(func.count()).select_from(Tenant))
                relations = conn.execute(text("SELECT count(*) FROM pg_class")).scalar_one()
            print(
                f"\n{at_head} of {registered} workspaces at {extra_head}; pg_class holds {relations} rows"
            )
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
