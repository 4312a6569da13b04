"""Ticket list and create under concurrency, through the served app and over bare async psycopg.

    python -m bench.load [--concurrency 1 16 64 256 1000] [--requests 2000] [--seconds 60]
                         [--workspaces 10] [--database-url URL]

Starts its own embedded PostgreSQL (or uses --database-url, an empty database), serves the app
with uvicorn in a separate process on 127.0.0.1 with the default settings (pool 10 + 5, a
workspace's share 0.5, a 20 s wait bound, 200 requests/s per workspace; fast password hashing),
and at each concurrency level runs `GET /api/v1/tickets` and `POST /api/v1/tickets` with that
many clients at once, each client sending its next request when its last one is answered, until
--requests are answered or --seconds have passed. The clients spread over --workspaces
workspaces (each seeded with a full page of tickets) and keep their connection alive.

In the same run the same operations go over bare psycopg: an `AsyncConnectionPool` as large as
the app's pool (pool_size + max_overflow), the same statements a request sends (those of
bench/tickets.py's bare path, brought up to what a request sends today), with prepared
statements, at the same concurrency. Per level it prints requests answered, successes per
second (ok/s: a 503 is answered fast and is no work done), p50 and p99 latency of every answer,
errors by status (or exception), and the ratio app / bare of ok/s: what FastAPI, pydantic,
SQLAlchemy, our code, HTTP and admission control cost at that concurrency.

The HTTP client is a minimal HTTP/1.1 client on asyncio streams rather than httpx: it runs in
this process next to the bare path, and httpx's own cost per request would be charged to the
app.
"""

import argparse
import asyncio
import json
import math
import os
import resource
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from auth.refresh_tokens import start_session
from auth.tokens import issue_access_token
from bench.support import bench_database, bench_workspace, serve
from helpdesk.core.db import transaction
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime

GENESIS = "0" * 64
# A full first page: the list returns as many rows whatever the creations add after it.
SEEDED_TICKETS = 50
REQUEST_TIMEOUT_SECONDS = 120.0
OPERATIONS = ("list", "create")
EXPECTED = {"list": 200, "create": 201}


# --- the HTTP side ----------------------------------------------------------------------------


class HttpConnection:
    """One keep-alive HTTP/1.1 connection to the app (Content-Length bodies only, as the app
    sends for these routes)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> int:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        try:
            self._writer.write(raw)
            await self._writer.drain()
            status_line = await self._reader.readline()
            if not status_line:
                raise ConnectionError("the server closed the connection")
            status = int(status_line.split()[1])
            length, close = 0, False
            while (line := await self._reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
                elif name == b"transfer-encoding":
                    raise ConnectionError("chunked responses are not expected here")
            await self._reader.readexactly(length)
        except BaseException:
            self.close()
            raise
        if close:
            self.close()
        return status

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None


def http_request(method: str, host: str, token: str, body: dict[str, Any] | None) -> bytes:
    head = [
        f"{method} /api/v1/tickets HTTP/1.1",
        f"Host: {host}",
        f"Authorization: Bearer {token}",
    ]
    payload = b""
    if body is not None:
        payload = json.dumps(body).encode()
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


# --- the bare side: the statements one request sends -----------------------------------------

_ENTER = (
    "SELECT id, slug, name, schema_name, role_name, status,"
    " set_config('search_path', quote_ident(schema_name) || ', public', true),"
    " set_config('role', role_name, true) FROM public.tenants WHERE id = %s"
)
# As helpdesk.pipeline's, with the session check the app's request path makes in it.
_MEMBER = (
    "SELECT m.role, m.email, m.name, cr.permissions, cr.ticket_scope,"
    " public.session_live(%s::uuid, m.user_id, m.tenant_id) AS session_live"
    " FROM public.members m"
    " LEFT JOIN public.custom_roles cr ON cr.tenant_id = m.tenant_id AND cr.name = m.role"
    " WHERE m.user_id = %s AND m.tenant_id = %s"
)
_AUDIT_HEAD = (
    "SELECT nextval(pg_get_serial_sequence('audit_events', 'id')),"
    " coalesce((SELECT hash FROM audit_events ORDER BY id DESC LIMIT 1),"
    " (SELECT last_hash FROM audit_checkpoints ORDER BY id DESC LIMIT 1), %s)"
)


@dataclass(frozen=True)
class Caller:
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    session_id: uuid.UUID  # the sign-in session its access tokens name
    token: str


async def _bare_enter(conn: psycopg.AsyncConnection[Any], caller: Caller) -> None:
    await conn.execute(_ENTER, (caller.tenant_id,))
    await conn.execute(_MEMBER, (caller.session_id, caller.user_id, caller.tenant_id))


async def _bare_audit(
    conn: psycopg.AsyncConnection[Any], caller: Caller, action: str, target: object
) -> None:
    # tenants.locks.LockKey.AUDIT_CHAIN
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema()), 3)")
    row = await (await conn.execute(_AUDIT_HEAD, (GENESIS,))).fetchone()
    assert row is not None
    await conn.execute(
        "INSERT INTO audit_events (id, occurred_at, actor_id, actor_role, action, target_type,"
        " target_id, outcome, request_id, changes, personal_data, personal, personal_digest,"
        " prev_hash, hash) VALUES (%s, now(), %s, 'admin', %s, 'ticket', %s, 'success', %s,"
        " '{}', true, '{}', %s, %s, %s)",
        (
            row[0],
            caller.user_id,
            action,
            None if target is None else str(target),
            uuid.uuid4().hex,
            GENESIS,
            row[1],
            uuid.uuid4().hex * 2,
        ),
    )


# helpdesk.tickets.repository's page: the ticket's shown columns, its live SLA state read at
# the request's moment (helpdesk.sla.state), its customer and its tags.
_PAGE = (
    "SELECT t.id, t.title, t.description, t.status, t.priority, t.category, t.customer_id,"
    " c.email AS customer_email, c.name AS customer_name, t.assignee_id, t.sla_due_at,"
    " coalesce(t.sla_breached OR t.first_response_at IS NULL"
    " AND t.status IN ('open', 'in_progress', 'pending') AND t.sla_due_at < %(now)s, false)"
    " AS sla_breached, t.resolution_due_at,"
    " coalesce(t.resolution_breached OR t.status NOT IN ('resolved', 'closed')"
    " AND coalesce(t.resolution_paused_at, %(now)s) > t.resolution_due_at, false)"
    " AS resolution_breached, t.escalated, t.created_at, t.updated_at,"
    " (SELECT array_agg(g.tag ORDER BY g.tag) FROM ticket_tags g WHERE g.ticket_id = t.id)"
    " AS tags FROM tickets t LEFT OUTER JOIN customers c ON c.id = t.customer_id"
    " ORDER BY t.id LIMIT %(limit)s"
)


async def bare_list(conn: psycopg.AsyncConnection[Any], caller: Caller, n: int) -> None:
    async with conn.transaction():
        await _bare_enter(conn, caller)
        # Binary results, as the app reads its page (helpdesk.tickets.repository.list_page).
        cursor = conn.cursor(row_factory=dict_row, binary=True)
        await cursor.execute(_PAGE, {"now": datetime.now(UTC), "limit": SEEDED_TICKETS + 1})
        await cursor.fetchall()
        await _bare_audit(conn, caller, "ticket.list", None)


async def bare_create(conn: psycopg.AsyncConnection[Any], caller: Caller, n: int) -> None:
    email = "load@example.com"
    now = datetime.now(UTC)
    async with conn.transaction():
        await _bare_enter(conn, caller)
        await conn.execute(
            "INSERT INTO customers (email, name) VALUES (%s, '')"
            " ON CONFLICT (lower(email)) DO NOTHING RETURNING id",
            (email,),
        )
        customer = await (
            await conn.execute("SELECT * FROM customers WHERE lower(email) = lower(%s)", (email,))
        ).fetchone()
        await conn.execute("SELECT * FROM workspace_settings")
        ticket = await (
            await conn.execute(
                "INSERT INTO tickets (title, description, priority, customer_id, sla_due_at,"
                " resolution_due_at, status_changed_at, created_at, updated_at)"
                " VALUES (%s, '', 'medium', %s, %s, %s, %s, %s, %s)"
                " RETURNING id, status, sla_breached, resolution_breached, escalated, search",
                (
                    f"bare {n}",
                    customer[0] if customer else None,
                    now + timedelta(hours=24),
                    now + timedelta(hours=72),
                    now,
                    now,
                    now,
                ),
            )
        ).fetchone()
        ticket_id = ticket[0] if ticket else None
        await conn.execute(
            "SELECT id FROM webhooks WHERE active AND events @> ARRAY['ticket.created']::varchar[]"
        )
        await conn.execute(
            "INSERT INTO outbox (kind, event, recipient, payload)"
            " VALUES ('email', 'ticket.created', %s, %s) RETURNING id",
            (email, json.dumps({"subject": "s", "body": "b"})),
        )
        await _bare_audit(conn, caller, "ticket.create", ticket_id)


BARE = {"list": bare_list, "create": bare_create}


# --- running one level ------------------------------------------------------------------------


@dataclass
class Run:
    expected: str  # the outcome of a success: a status, or "ok" on the bare path
    latencies: list[float] = field(default_factory=list)
    outcomes: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def throughput(self) -> float:
        """Successes per second: a refusal is answered quickly and is not work done."""
        return self.outcomes[self.expected] / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, math.ceil(p * len(ordered)) - 1)]

    def errors(self) -> str:
        wrong = {k: v for k, v in self.outcomes.items() if k != self.expected}
        return " ".join(f"{k}x{v}" for k, v in sorted(wrong.items())) or "-"


async def closed_loop(
    concurrency: int,
    requests: int,
    seconds: float,
    expected: str,
    one: Callable[[int, int], Awaitable[str]],
) -> Run:
    """``concurrency`` clients, each sending its next request when its last is answered, until
    ``requests`` are sent or ``seconds`` have passed; ``one(client, n)`` sends request ``n``
    and says how it ended (a status, or an error's name)."""
    run = Run(expected)
    issued = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def client(index: int) -> None:
        nonlocal issued
        while issued < requests and time.perf_counter() < deadline:
            n = issued
            issued += 1
            sent = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT_SECONDS):
                    outcome = await one(index, n)
            except Exception as exc:  # noqa: BLE001 - counted and shown, never fatal
                outcome = type(exc).__name__
            run.latencies.append(time.perf_counter() - sent)
            run.outcomes[outcome] += 1

    await asyncio.gather(*(client(i) for i in range(concurrency)))
    run.seconds = time.perf_counter() - started
    return run


async def app_level(
    base: str, callers: list[Caller], operation: str, concurrency: int, args: argparse.Namespace
) -> Run:
    parts = urlsplit(base)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    connections = [HttpConnection(host, port) for _ in range(concurrency)]
    method = "GET" if operation == "list" else "POST"

    async def one(index: int, n: int) -> str:
        caller = callers[index % len(callers)]
        body = None
        if operation == "create":
            body = {"title": f"load {n}", "customer_email": "load@example.com"}
        raw = http_request(method, parts.netloc, caller.token, body)
        return str(await connections[index].request(raw))

    try:
        expected = str(EXPECTED[operation])
        return await closed_loop(concurrency, args.requests, args.seconds, expected, one)
    finally:
        for connection in connections:
            connection.close()


async def bare_level(
    pool: AsyncConnectionPool[Any],
    callers: list[Caller],
    operation: str,
    concurrency: int,
    args: argparse.Namespace,
) -> Run:
    statements = BARE[operation]

    async def one(index: int, n: int) -> str:
        async with pool.connection(timeout=REQUEST_TIMEOUT_SECONDS) as conn:
            await statements(conn, callers[index % len(callers)], n)
        return "ok"

    return await closed_loop(concurrency, args.requests, args.seconds, "ok", one)


def fresh_tokens(runtime: Runtime, callers: list[Caller]) -> list[Caller]:
    # Access tokens live 15 minutes; a long run must not outlive them.
    return [
        Caller(
            c.tenant_id,
            c.user_id,
            c.session_id,
            issue_access_token(runtime.settings, c.user_id, c.tenant_id, c.session_id)[0],
        )
        for c in callers
    ]


def row(label: str, run: Run) -> str:
    return (
        f"{label:5} {run.requests:6d} {run.throughput:9.1f} {run.percentile(0.5) * 1000:9.1f}"
        f" {run.percentile(0.99) * 1000:9.1f}  {run.errors()}"
    )


async def measure(
    runtime: Runtime, base: str, libpq_url: str, callers: list[Caller], args: argparse.Namespace
) -> None:
    settings = Settings(database_url=runtime.database_url)  # the app's defaults, as served
    size = settings.pool_size + settings.pool_max_overflow
    print(
        f"app: uvicorn, 1 process, pool {settings.pool_size} + {settings.pool_max_overflow},"
        f" workspace share {settings.workspace_pool_share}, wait bound"
        f" {settings.pool_wait_seconds:g} s, {settings.workspace_rate_per_second:g} req/s per"
        f" workspace; bare: AsyncConnectionPool of {size}; {len(callers)} workspaces;"
        f" {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the start"
    )
    print(f"each run: {args.requests} requests or {args.seconds:g} s, whichever comes first\n")
    print(
        f"{'op':6} {'conc':>5} {'path':5} {'reqs':>6} {'ok/s':>9} {'p50 ms':>9} {'p99 ms':>9}  errors"
    )
    async with AsyncConnectionPool(
        libpq_url, min_size=size, max_size=size, kwargs={"prepare_threshold": 0}, open=False
    ) as pool:
        await pool.open(wait=True)
        # Warm both paths: the app's pool opens its connections, the bare statements prepare.
        for operation in OPERATIONS:
            await app_level(base, fresh_tokens(runtime, callers), operation, 16, _warm(args))
            await bare_level(pool, callers, operation, 16, _warm(args))
        for concurrency in args.concurrency:
            for operation in OPERATIONS:
                app = await app_level(
                    base, fresh_tokens(runtime, callers), operation, concurrency, args
                )
                bare = await bare_level(pool, callers, operation, concurrency, args)
                ratio = app.throughput / bare.throughput if bare.throughput else math.nan
                print(f"{operation:6} {concurrency:5d} {row('app', app)}")
                print(f"{'':6} {'':5} {row('bare', bare)}")
                print(f"{'':6} {'':5} app/bare {ratio:.2f}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


def _warm(args: argparse.Namespace) -> argparse.Namespace:
    return argparse.Namespace(requests=100, seconds=args.seconds)


def seed(runtime: Runtime, base: str, workspaces: int) -> list[Caller]:
    callers = []
    for n in range(workspaces):
        tenant, user_id = bench_workspace(runtime, f"load_{n:03d}", f"Load {n}")
        # As signing in would: a session, which every access token must name.
        with transaction(runtime.sessions) as session:
            session_id, _ = start_session(
                session, user_id=user_id, tenant_id=tenant.id, lifetime=timedelta(days=1)
            )
        token, _ = issue_access_token(runtime.settings, user_id, tenant.id, session_id)
        callers.append(Caller(tenant.id, user_id, session_id, token))
    parts = urlsplit(base)

    async def fill() -> None:
        async def one(caller: Caller) -> None:
            connection = HttpConnection(parts.hostname or "127.0.0.1", parts.port or 80)
            try:
                for i in range(SEEDED_TICKETS):
                    body = {"title": f"seeded {i}", "customer_email": f"c{i}@example.com"}
                    raw = http_request("POST", parts.netloc, caller.token, body)
                    status = await connection.request(raw)
                    assert status == 201, status
            finally:
                connection.close()

        await asyncio.gather(*(one(c) for c in callers))

    asyncio.run(fill())
    return callers


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64, 256, 1000])
    parser.add_argument(
        "--requests", type=int, default=2000, help="per run (level, operation, path)"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="per run, at most")
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument(
        "--database-url", help="an empty database to use instead of an embedded server"
    )
    args = parser.parse_args()

    # A thousand client connections, and the pool's.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max(args.concurrency) * 2 + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))

    with bench_database(args.database_url) as bench:
        runtime = bench.runtime
        with serve(bench.url) as (base, _pid):
            callers = seed(runtime, base, args.workspaces)
            asyncio.run(measure(runtime, base, bench.libpq_url, callers, args))


if __name__ == "__main__":
    main()
