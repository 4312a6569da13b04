"""Audit export throughput and the server's memory while it streams, then the offline check.

    python -m bench.audit_export [--events 1000000] [--format ndjson csv] [--database-url URL]

Starts its own embedded PostgreSQL (or uses --database-url, an empty database), provisions one
workspace and loads N chained audit events with COPY (the chain computed here, in the form
``audit.chain`` hashes), serves the app with uvicorn in a separate process on 127.0.0.1, and
downloads ``GET /audit/export`` to a file while a thread samples the server process's RSS.
Prints events per second; then the floor, the export's own ``COPY`` statement read through
psycopg with nothing around it, and the ratio export/bare; the server's RSS before the export
and at its peak during it (sampled, and the kernel's high-water mark, VmHWM); then checks the
file with ``audit.export_file.verify_export`` and prints that rate too, by the clock and per
CPU-second. Everything it started is stopped and removed on the way out.
"""

import argparse
import hashlib
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from audit.chain import GENESIS, canonical, event_hash, personal_digest, timestamp
from audit.export_copy import copy_statement
from audit.export_file import ExportFormat, verify_export
from audit.queries import EventFilters
from bench.support import Bench, bench_database, bench_workspace, serve, signed_in_token

SLUG = "bench_export"
MiB = 1024 * 1024
_COPY = (
    "COPY audit_events (id, occurred_at, actor_id, actor_role, action, target_type, target_id,"
    " outcome, request_id, changes, personal_data, personal, personal_digest, prev_hash, hash)"
    " FROM STDIN"
)
# A few kinds of event, shaped like the app's: (action, target type, plain changes, personal).
_KINDS: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = [
    ("ticket.create", "ticket", {"priority": "high", "tags": ["vpn"]}, {"title": "VPN drops"}),
    ("ticket.update", "ticket", {"status": "in_progress"}, None),
    ("comment.create", "comment", {"public": True, "ticket_id": 1}, {"body": "Looking now."}),
    ("ticket.read", "ticket", {}, None),
    ("customer.read", "customer", {}, None),
]
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) bench/1.0"
_LOAD_BLOCK = 10_000  # rows per write to COPY


def chained_rows(count: int, actors: list[uuid.UUID]) -> Iterator[str]:
    """COPY text rows of a valid chain of ``count`` events, ids 1..count.

    Each event's canonical text is written from a template rather than by ``canonical``: a
    million ``json.dumps`` calls made loading the slowest part of the run. The values hold no
    character JSON or COPY would escape, and the first events are checked against
    ``audit.chain`` so a template that drifts from the hashed form stops the run at once.
    """
    prev = GENESIS
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)
    # The personal changes as the key they are held under, in its sorted place, or nothing.
    kinds = [
        (
            action,
            target_type,
            canonical(changes),
            f'"changes":{canonical(personal)},' if personal else "",
        )
        for action, target_type, changes, personal in _KINDS
    ]
    actor_ids = [str(actor) for actor in actors]
    for n in range(1, count + 1):
        action, target_type, changes, personal_changes = kinds[n % len(kinds)]
        actor = n % len(actors)
        occurred_at = timestamp(start + timedelta(milliseconds=n))
        personal = (
            f'{{"actor_email":"agent{actor}@bench.example.com",{personal_changes}'
            f'"ip":"10.0.{n % 250}.{n % 199}","user_agent":"{_USER_AGENT}"}}'
        )
        digest_of_personal = hashlib.sha256(personal.encode()).hexdigest()
        personal_data = "true" if personal_changes else "false"
        request_id = f"{n:032x}"
        body = (
            f'{{"action":"{action}","actor_id":"{actor_ids[actor]}","actor_role":"agent",'
            f'"changes":{changes},"id":{n},"occurred_at":"{occurred_at}","outcome":"success",'
            f'"personal_data":{personal_data},"personal_digest":"{digest_of_personal}",'
            f'"request_id":"{request_id}","target_id":"{n // 7 + 1}",'
            f'"target_type":"{target_type}"}}'
        )
        digest = hashlib.sha256((prev + body).encode()).hexdigest()
        if n <= len(kinds):
            _check_template(n, prev, digest, body, personal)
        yield (
            f"{n}\t{occurred_at}\t{actor_ids[actor]}\tagent\t{action}\t{target_type}"
            f"\t{n // 7 + 1}\tsuccess\t{request_id}\t{changes}\t{personal_data}\t{personal}"
            f"\t{digest_of_personal}\t{prev}\t{digest}\n"
        )
        prev = digest


def _check_template(n: int, prev: str, digest: str, body: str, personal: str) -> None:
    fields = json.loads(body)
    if (
        canonical(fields) != body
        or personal_digest(json.loads(personal)) != fields["personal_digest"]
        or event_hash(prev, fields) != digest
    ):
        raise RuntimeError(f"event {n}: the bench's template is not the chain's canonical form")


def load(libpq_url: str, schema: str, count: int) -> None:
    """Bulk-load the chain as the database owner, then move the id sequence past it."""
    actors = [uuid.uuid4() for _ in range(20)]
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            rows = chained_rows(count, actors)
            while block := "".join(itertools.islice(rows, _LOAD_BLOCK)):
                copy.write(block)
        conn.execute(
            "SELECT setval(pg_get_serial_sequence('audit_events', 'id'), %s)", (max(count, 1),)
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE audit_events")


def bare_copy(libpq_url: str, schema: str, export_format: ExportFormat) -> tuple[float, int, int]:
    """The export's own ``COPY`` statement read through psycopg with nothing around it (no
    HTTP, no file, no manifest): the floor the export is compared with. Seconds, rows, bytes."""
    with psycopg.connect(libpq_url) as conn:
        conn.execute("SELECT set_config('search_path', %s, false)", (schema,))
        through = conn.execute("SELECT coalesce(max(id), 0) FROM audit_events").fetchone()
        statement, params = copy_statement(
            export_format, EventFilters(), through_id=through[0] if through else 0
        )
        started = time.perf_counter()
        rows = size = 0
        with conn.cursor() as cursor, cursor.copy(statement, params) as copy:
            for data in copy:
                rows += 1
                size += len(data)
        return time.perf_counter() - started, rows, size


class RssSampler:
    """Samples a process's resident set size every few milliseconds, keeping the largest."""

    def __init__(self, process: psutil.Process, interval: float = 0.02) -> None:
        self.process, self.interval = process, interval
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            self.samples += 1
            time.sleep(self.interval)


def high_water_mark(pid: int) -> int | None:
    """The kernel's record of the process's peak RSS (Linux), in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def download(
    base: str, token: str, export_format: str, target: Path
) -> tuple[float, int, dict[str, str]]:
    """Stream the export into ``target``; the elapsed seconds, bytes and response headers."""
    started = time.perf_counter()
    size = 0
    with (
        httpx.Client(base_url=base, timeout=120) as client,
        client.stream(
            "GET",
            "/api/v1/audit/export",
            params={"format": export_format},
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
        target.open("wb") as sink,
    ):
        response.raise_for_status()
        for chunk in response.iter_raw(MiB):
            sink.write(chunk)
            size += len(chunk)
        headers = dict(response.headers)
    return time.perf_counter() - started, size, headers


def measure(
    base: str,
    process: psutil.Process,
    token: Callable[[], str],
    args: argparse.Namespace,
    *,
    bench: Bench,
    schema: str,
) -> None:
    # Warm up the route (imports, pools, first queries) with an export that selects nothing.
    with httpx.Client(base_url=base, timeout=120) as client:
        warm = client.get(
            "/api/v1/audit/export",
            params={"action": "bench.nothing"},
            headers={"Authorization": f"Bearer {token()}"},
        )
        warm.raise_for_status()
    baseline = process.memory_info().rss
    hwm_before = high_water_mark(process.pid)
    before = f"{hwm_before / MiB:,.1f} MiB" if hwm_before else "unavailable"
    print(
        f"server RSS before the export: {baseline / MiB:,.1f} MiB"
        f" (VmHWM since the server started: {before})",
        flush=True,
    )
    for export_format in args.format:
        target = bench.home / f"export.{export_format}"
        with RssSampler(process) as sampler:
            elapsed, size, headers = download(base, token(), export_format, target)
        manifest_line = _last_line(target)
        manifest = json.loads(
            manifest_line.removeprefix(b"#manifest ") if export_format == "csv" else manifest_line
        )
        manifest = manifest.get("manifest", manifest)
        rows = manifest["rows"]
        hwm = high_water_mark(process.pid)
        print(
            f"{export_format}: {rows:,} events, {size / MiB:,.1f} MiB in {elapsed:.1f} s:"
            f" {rows / elapsed:,.0f} events/s, {size / MiB / elapsed:,.1f} MiB/s",
            flush=True,
        )
        floor_elapsed, floor_rows, floor_size = bare_copy(
            bench.libpq_url, schema, ExportFormat(export_format)
        )
        print(
            f"  bare COPY of the same rows: {floor_rows:,} events, {floor_size / MiB:,.1f} MiB"
            f" in {floor_elapsed:.1f} s: {floor_rows / floor_elapsed:,.0f} events/s;"
            f" export/bare: {(rows / elapsed) / (floor_rows / floor_elapsed):.2f}",
            flush=True,
        )
        kernel = f"{hwm / MiB:,.1f} MiB" if hwm else "unavailable"
        print(
            f"  server RSS peak during the export: {sampler.peak / MiB:,.1f} MiB"
            f" (+{(sampler.peak - baseline) / MiB:,.1f} MiB over the baseline,"
            f" {sampler.samples:,} samples); VmHWM now: {kernel}",
            flush=True,
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        verdict = verify_export(target, expected_head=headers.get("x-audit-chain-head"))
        checked, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        # The check runs on one CPU: its CPU time is the rate on an idle machine, which the
        # wall-clock rate is not when other work shares the machine.
        print(
            f"  offline verification: {'valid' if verdict.valid else 'INVALID'}"
            f" ({verdict.reason}) in {checked:.1f} s: {verdict.rows / checked:,.0f} events/s"
            f" (CPU {cpu:.1f} s: {verdict.rows / cpu:,.0f} events per CPU-second)",
            flush=True,
        )
        target.unlink()


def _last_line(path: Path) -> bytes:
    with path.open("rb") as stream:
        stream.seek(max(0, path.stat().st_size - 4096))
        return stream.read().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="audit events to export")
    parser.add_argument("--format", nargs="+", choices=["ndjson", "csv"], default=["ndjson", "csv"])
    parser.add_argument(
        "--database-url", help="an empty database to use instead of an embedded server"
    )
    args = parser.parse_args()

    with bench_database(args.database_url) as bench:
        tenant, admin_id = bench_workspace(bench.runtime, SLUG, "Export bench")
        tenant_id, schema = tenant.id, tenant.schema_name
        started = time.perf_counter()
        load(bench.libpq_url, schema, args.events)
        print(
            f"loaded {args.events:,} chained events in {time.perf_counter() - started:.1f} s",
            flush=True,
        )

        def token() -> str:
            # Fresh for each request: access tokens are short-lived, and a run takes a while.
            return signed_in_token(bench.runtime, admin_id, tenant_id)

        with serve(bench.url) as (base, pid):
            measure(base, psutil.Process(pid), token, args, bench=bench, schema=schema)


if __name__ == "__main__":
    main()
