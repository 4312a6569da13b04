"""Retention purge throughput, and what concurrent ticket reads see meanwhile.

    python -m bench.retention [--tickets 1000000] [--open 10000] [--batch-size 1000] [--readers 2]

Starts its own embedded PostgreSQL (or uses --database-url, an empty database), provisions one
workspace and bulk-loads N tickets closed 400 days ago (every tenth with a comment and a tag) plus
some open ones, then purges them under a 30-day policy with ``audit.retention.run_retention`` while
reader threads, under the workspace's role as the app runs, fetch an open ticket by id, list open
tickets, and fetch a closed ticket that the purge is deleting. Every read is timed; the longest is
the worst wait a reader saw, lock waits included. A monitor samples pg_stat_activity for backends
waiting on a lock. Prints the purge's rows per second and read latency p50 / p99 / max, against
the same reads on the idle workspace just before.
"""

import argparse
import random
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from audit.retention import update_policy
from bench.support import bench_database, bench_workspace
from helpdesk.compliance.service import run_retention
from helpdesk.core.db import tenant_transaction
from helpdesk.runtime import Runtime
from tenants.context import TenantRef

SLUG = "bench_retention"


def load(libpq_url: str, schema: str, closed: int, open_: int) -> tuple[int, int]:
    """Bulk-load the workspace as its owner; return the last closed ticket's id and the last id
    (closed tickets come first, then the open ones)."""
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        customer = conn.execute(
            "INSERT INTO customers (email, name) VALUES ('bench@example.com', 'Bench') RETURNING id"
        ).fetchone()
        assert customer is not None
        conn.execute(
            "INSERT INTO tickets (title, description, status, priority, customer_id,"
            " status_changed_at, created_at, updated_at)"
            " SELECT 'Closed ticket ' || g, 'Long finished business, case ' || g, 'closed',"
            " 'medium', %s, now() - interval '400 days', now() - interval '410 days',"
            " now() - interval '400 days' FROM generate_series(1, %s) g",
            (customer[0], closed),
        )
        last_closed = conn.execute("SELECT max(id) FROM tickets").fetchone()
        assert last_closed is not None
        conn.execute(
            "INSERT INTO comments (ticket_id, author_id, body, created_at)"
            " SELECT id, gen_random_uuid(), 'old comment', created_at FROM tickets"
            " WHERE mod(id, 10) = 0"
        )
        conn.execute(
            "INSERT INTO ticket_tags (ticket_id, tag) SELECT id, 'old' FROM tickets WHERE mod(id, 10) = 0"
        )
        conn.execute(
            "INSERT INTO tickets (title, description, status, priority, customer_id)"
            " SELECT 'Open ticket ' || g, 'Still going', 'open', 'high', %s"
            " FROM generate_series(1, %s) g",
            (customer[0], open_),
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE tickets, comments, ticket_tags")
    return int(last_closed[0]), int(last_closed[0]) + open_


class Readers:
    """Threads reading tickets as the app does, each read timed, until stopped."""

    def __init__(
        self, libpq_url: str, tenant: TenantRef, *, last_closed: int, last_id: int, threads: int
    ) -> None:
        self.url, self.schema, self.role = libpq_url, tenant.schema_name, tenant.role_name
        self.last_closed, self.last_id = last_closed, last_id
        self.threads = threads
        self.latencies: dict[str, list[float]] = {"by_id": [], "open_list": [], "closed_by_id": []}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.workers: list[threading.Thread] = []

    def start(self) -> None:
        self.stop.clear()
        self.workers = [threading.Thread(target=self._read) for _ in range(self.threads)]
        for worker in self.workers:
            worker.start()

    def finish(self) -> dict[str, list[float]]:
        self.stop.set()
        for worker in self.workers:
            worker.join()
        with self.lock:
            taken = {k: list(v) for k, v in self.latencies.items()}
            for values in self.latencies.values():
                values.clear()
        return taken

    def _read(self) -> None:
        rng = random.Random()
        reads: list[tuple[str, str, Callable[[], tuple[Any, ...]]]] = [
            (
                "by_id",
                "SELECT * FROM tickets WHERE id = %s",
                lambda: (rng.randint(self.last_closed + 1, self.last_id),),
            ),
            (
                "open_list",
                "SELECT * FROM tickets WHERE status = 'open' ORDER BY id LIMIT 50",
                tuple,
            ),
            (
                "closed_by_id",
                "SELECT * FROM tickets WHERE id = %s",
                lambda: (rng.randint(1, self.last_closed),),
            ),
        ]
        with psycopg.connect(self.url) as conn:
            while not self.stop.is_set():
                for kind, query, params in reads:
                    started = time.perf_counter()
                    with conn.transaction():
                        conn.execute(
                            "SELECT set_config('search_path', %s, true), set_config('role', %s, true)",
                            (self.schema, self.role),
                        )
                        conn.execute(query, params()).fetchall()
                    elapsed = time.perf_counter() - started
                    with self.lock:
                        self.latencies[kind].append(elapsed)


class LockMonitor:
    """Samples pg_stat_activity for backends waiting on a heavyweight lock."""

    def __init__(self, libpq_url: str) -> None:
        self.url = libpq_url
        self.samples = 0
        self.waiting_samples = 0
        self.longest_wait = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch)

    def __enter__(self) -> "LockMonitor":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _watch(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                row = conn.execute(
                    "SELECT count(*), coalesce(max(extract(epoch FROM clock_timestamp() - state_change)), 0)"
                    " FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                ).fetchone()
                assert row is not None
                self.samples += 1
                if row[0]:
                    self.waiting_samples += 1
                    self.longest_wait = max(self.longest_wait, float(row[1]))
                time.sleep(0.01)


def describe(latencies: dict[str, list[float]]) -> str:
    every = sorted(v for values in latencies.values() for v in values)
    if not every:
        return "no reads"
    p99 = every[min(len(every) - 1, int(len(every) * 0.99))]
    parts = [
        f"{len(every)} reads",
        f"p50 {statistics.median(every) * 1000:.2f} ms",
        f"p99 {p99 * 1000:.2f} ms",
        f"max {every[-1] * 1000:.1f} ms",
    ]
    per_kind = ", ".join(
        f"{kind} max {max(values) * 1000:.1f} ms" for kind, values in latencies.items() if values
    )
    return "  ".join(parts) + f"  ({per_kind})"


def measure(runtime: Runtime, libpq_url: str, tenant: TenantRef, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    last_closed, last_id = load(libpq_url, tenant.schema_name, args.tickets, args.open)
    print(
        f"loaded {args.tickets:,} closed tickets (+{args.tickets // 10:,} comments and tags)"
        f" and {args.open:,} open ones in {time.perf_counter() - started:.1f} s"
    )
    with tenant_transaction(runtime.sessions, tenant.schema_name, tenant.role_name) as session:
        update_policy(session, {"closed_ticket_days": 30})
    with tenant_transaction(runtime.sessions, tenant.schema_name, tenant.role_name) as session:
        preview = run_retention(session, runtime.sessions, tenant, dry_run=True)
    print(f"dry run: would remove {preview.tickets:,} tickets and {preview.comments:,} comments")

    readers = Readers(
        libpq_url, tenant, last_closed=last_closed, last_id=last_id, threads=args.readers
    )
    readers.start()
    time.sleep(3)
    idle = readers.finish()

    readers.start()
    with LockMonitor(libpq_url) as monitor:
        started = time.perf_counter()
        with tenant_transaction(runtime.sessions, tenant.schema_name, tenant.role_name) as session:
            report = run_retention(session, runtime.sessions, tenant, batch_size=args.batch_size)
        elapsed = time.perf_counter() - started
    busy = readers.finish()

    rows = report.tickets + report.comments
    print(
        f"purge: {report.tickets:,} tickets + {report.comments:,} comments (tags cascaded)"
        f" in {report.batches:,} batches of {args.batch_size:,}, {elapsed:.1f} s:"
        f" {report.tickets / elapsed:,.0f} tickets/s, {rows / elapsed:,.0f} rows/s"
    )
    print(f"reads, idle workspace ({args.readers} threads, 3 s): {describe(idle)}")
    print(f"reads during the purge ({args.readers} threads): {describe(busy)}")
    print(
        f"backends waiting on a lock: {monitor.waiting_samples} of {monitor.samples} samples"
        f" (longest seen {monitor.longest_wait * 1000:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=1_000_000, help="closed tickets to purge")
    parser.add_argument("--open", type=int, default=10_000, help="open tickets the readers read")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument(
        "--database-url", help="an empty database to use instead of an embedded server"
    )
    args = parser.parse_args()

    with bench_database(args.database_url) as bench:
        tenant, _admin = bench_workspace(bench.runtime, SLUG, "Retention bench")
        measure(bench.runtime, bench.libpq_url, tenant, args)


if __name__ == "__main__":
    main()
