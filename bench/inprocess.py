"""What one sequential ticket list or create costs inside the app, against the same statements
over bare async psycopg, in one process and on one event loop: no HTTP server, no client.

    python -m bench.inprocess [--requests 500] [--rounds 3] [--profile FILE] [--database-url URL]

Starts its own embedded PostgreSQL (or uses --database-url, an empty database), provisions one
workspace with a full first page of 50 tickets, then alternates rounds: the app's ASGI callable
called directly (middleware, routing, dependencies, the transaction, serialisation: everything
the served app does but parse HTTP), then bench.load's bare statements over one
``psycopg.AsyncConnection``. It prints milliseconds per request for each, app / bare per
round, and each side's CPU time per request in this process (PostgreSQL's is not in it): the
figure that moves least when the machine is shared. With --profile it runs one more round of each app operation under cProfile and writes
the 60 costliest functions (by own time and by cumulative time) to FILE.

This is where the per-request hot spots are found (bench/README.md); bench.load then tells
whether a change shows through HTTP and under concurrency.
"""

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import statistics
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg
from fastapi import FastAPI

from auth.refresh_tokens import start_session
from auth.tokens import issue_access_token
from bench.load import BARE, SEEDED_TICKETS, Caller
from bench.support import bench_database, bench_workspace
from helpdesk.app import create_app
from helpdesk.core.db import transaction
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime

PATH = "/api/v1/tickets"


async def asgi_call(app: FastAPI, method: str, token: str, body: bytes = b"") -> tuple[int, bytes]:
    """One request through the ASGI callable, as uvicorn would hand it over."""
    headers = [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
        "state": {},
    }
    delivered = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # nobody disconnects
        raise AssertionError

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def _create_body(n: int) -> bytes:
    return json.dumps({"title": f"inprocess {n}", "customer_email": "load@example.com"}).encode()


@dataclass(frozen=True)
class Round:
    seconds: float  # wall-clock time per request
    cpu_seconds: float  # this process's CPU time per request: the Python side's own cost


async def app_round(app: FastAPI, token: str, operation: str, requests: int) -> Round:
    method, expected = ("GET", 200) if operation == "list" else ("POST", 201)
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(requests):
        status, body = await asgi_call(
            app, method, token, b"" if operation == "list" else _create_body(n)
        )
        if status != expected:
            raise RuntimeError(f"{method} answered {status}: {body[:300]!r}")
    return Round((time.perf_counter() - started) / requests, (time.process_time() - cpu) / requests)


async def bare_round(
    conn: psycopg.AsyncConnection[Any], caller: Caller, operation: str, requests: int
) -> Round:
    statements: Callable[[psycopg.AsyncConnection[Any], Caller, int], Awaitable[None]]
    statements = BARE[operation]
    started, cpu = time.perf_counter(), time.process_time()
    for n in range(requests):
        await statements(conn, caller, n)
    return Round((time.perf_counter() - started) / requests, (time.process_time() - cpu) / requests)


def seed(runtime: Runtime) -> Caller:
    tenant, user_id = bench_workspace(runtime, "inprocess", "In process")
    with transaction(runtime.sessions) as session:
        session_id, _ = start_session(
            session, user_id=user_id, tenant_id=tenant.id, lifetime=timedelta(days=1)
        )
    token, _ = issue_access_token(runtime.settings, user_id, tenant.id, session_id)
    return Caller(tenant.id, user_id, session_id, token)


async def measure(url: str, libpq_url: str, caller: Caller, args: argparse.Namespace) -> None:
    settings = Settings(database_url=url, password_hash_profile="fast")
    app = create_app(Runtime.connect(settings, url))
    async with (
        app.router.lifespan_context(app),
        await psycopg.AsyncConnection.connect(libpq_url, prepare_threshold=0) as conn,
    ):
        for i in range(SEEDED_TICKETS):
            status, _ = await asgi_call(app, "POST", caller.token, _create_body(i))
            assert status == 201, status
        for operation in ("list", "create"):
            await app_round(app, caller.token, operation, 50)
            await bare_round(conn, caller, operation, 50)
        print(f"{args.requests} sequential requests per round, {args.rounds} rounds")
        print(
            f"{'op':6} {'app ms':>8} {'bare ms':>8} {'app/bare':>9}"
            f" {'app cpu ms':>11} {'bare cpu ms':>12}"
        )
        for operation in ("list", "create"):
            ratios = []
            for _ in range(args.rounds):
                app_r = await app_round(app, caller.token, operation, args.requests)
                bare_r = await bare_round(conn, caller, operation, args.requests)
                ratios.append(bare_r.seconds / app_r.seconds)
                print(
                    f"{operation:6} {app_r.seconds * 1000:8.2f} {bare_r.seconds * 1000:8.2f}"
                    f" {ratios[-1]:9.2f} {app_r.cpu_seconds * 1000:11.2f}"
                    f" {bare_r.cpu_seconds * 1000:12.2f}"
                )
            print(
                f"{operation:6} app/bare median {statistics.median(ratios):.2f}"
                f" (range {min(ratios):.2f}-{max(ratios):.2f})",
                flush=True,
            )
        if args.profile:
            out = io.StringIO()
            for operation in ("list", "create"):
                profiler = cProfile.Profile()
                profiler.enable()
                await app_round(app, caller.token, operation, args.requests)
                profiler.disable()
                for order in ("tottime", "cumulative"):
                    out.write(f"\n==== {operation}: by {order} ({args.requests} requests)\n")
                    pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(60)
            with open(args.profile, "w") as f:
                f.write(out.getvalue())
            print(f"profile written to {args.profile}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=500, help="per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", help="write a cProfile summary of the app's path here")
    parser.add_argument(
        "--database-url", help="an empty database to use instead of an embedded server"
    )
    args = parser.parse_args()
    with bench_database(args.database_url) as bench:
        caller = seed(bench.runtime)
        asyncio.run(measure(bench.url, bench.libpq_url, caller, args))


if __name__ == "__main__":
    main()
