"""Availability against a served app (uvicorn on loopback, real PostgreSQL): issue 12's acceptance.

A burst of 1,000 requests over ten workspaces is answered in full and in isolation; one
workspace's burst is refused with 503 ``overloaded`` while another workspace is served (the
noisy neighbour); a workspace over its request rate gets 429 and nobody else does; backends
terminated during concurrent writes lose no acknowledged write, and ``Idempotency-Key`` retries
duplicate none; a PostgreSQL stopped and started under load is survived without restarting the
app.

The burst runs against `helpdesk serve` in a process of its own, as deployed, and its client in
another (tests/support/load_client.py): in the test process both would share one interpreter
lock and run under the coverage tracer. The other tests serve the app in a thread, where the
test can reach its admission control and pools.

Nothing here asserts on wall-clock time. Contention is made from the database's side (a
workspace's advisory lock held by another connection, ``pg_terminate_backend``, ``pg_ctl stop``),
never by slowing the app's code, and the tests wait on conditions (lock waiters, responses
counted); the only time bounds turn a hang into a failure.
"""

import asyncio
import itertools
import resource
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import column, select, table

from helpdesk.app import create_app
from helpdesk.core.settings import Settings
from helpdesk.migrate import upgrade_public
from helpdesk.runtime import RequestPath, Runtime
from tenants.locks import LockKey
from tests.support.factories import Factory, Member, Workspace
from tests.support.faults import (
    holding_workspace_lock,
    restartable_postgres,
    tagged_url,
    terminate_backends,
    unique_application_name,
)
from tests.support.live_server import LiveServer, live_server
from tests.support.load_client import Call, run_burst
from tests.support.served_process import helpdesk_serve

# One worker runs them one after another: each loads both cores on its own.
# "load": these measure what one server process on this machine can take, so `make test` runs
# them on their own, before the rest of the suite, rather than beside another xdist worker.
pytestmark = [pytest.mark.e2e, pytest.mark.load]

# Guards against a hang only: nothing here measures speed.
HTTP_TIMEOUT = httpx.Timeout(120.0, connect=60.0)
CONDITION_TIMEOUT_SECONDS = 60.0
TICKETS = "/api/v1/tickets"


@dataclass(frozen=True)
class Served:
    server: LiveServer
    path: RequestPath
    runtime: Runtime

    @property
    def base_url(self) -> str:
        return self.server.base_url


@contextmanager
def serving(settings: Settings, url: str) -> Iterator[Served]:
    """The app with ``settings`` on its own pools, served by uvicorn on a free loopback port."""
    runtime = Runtime.connect(settings, url)
    app = create_app(runtime)
    try:
        with live_server(app) as server:
            yield Served(server, app.state.request_path, runtime)
    finally:
        runtime.engine.dispose()


def http_client(base_url: str, connections: int) -> httpx.AsyncClient:
    # No connection is reused: one left idle past the server's keep-alive time-out while this
    # process is busy sending a burst is closed under the next request (a ReadError).
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=HTTP_TIMEOUT,
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=0),
    )


async def until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``condition`` until it holds; fail (rather than hang) if it never does."""
    deadline = time.monotonic() + CONDITION_TIMEOUT_SECONDS
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def enough_file_descriptors() -> None:
    """A thousand connections' ends in the server and in the client, both children of this
    process: they inherit its limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096
    if soft != resource.RLIM_INFINITY and soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.fail(f"this test needs {wanted} open files; the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def metric_samples(text_format: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text_format)
        for sample in family.samples
    }


@dataclass(frozen=True)
class Tenant:
    workspace: Workspace
    headers: dict[str, str]
    titles: frozenset[str]

    @property
    def slug(self) -> str:
        return self.workspace.slug


async def seed_tickets(
    http: httpx.AsyncClient, factory: Factory, workspace: Workspace, count: int
) -> Tenant:
    """``count`` tickets whose titles name their workspace, so a row seen elsewhere is known."""
    headers = factory.headers(workspace.admin, workspace)
    titles = set()
    for n in range(1, count + 1):
        title = f"{workspace.slug} ticket {n}"
        response = await http.post(
            TICKETS,
            json={
                "title": title,
                "customer_email": f"c{n}@{workspace.slug.replace('_', '-')}.example.com",
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
        titles.add(title)
    return Tenant(workspace, headers, frozenset(titles))


# --- a burst of 1,000 requests over ten workspaces, default settings -------------------------

BURST_REQUESTS = 1000
BURST_WORKSPACES = 10
BURST_TICKETS_EACH = 2


@dataclass(frozen=True)
class Listing:
    slug: str
    status: int
    titles: frozenset[str]


def listing_faults(listing: Listing, tenants: dict[str, Tenant]) -> str | None:
    """What is wrong with one ``GET /tickets`` answer, or None: it must be a 200 holding
    exactly its own workspace's tickets. Ticket ids come from each schema's own sequence, so
    every workspace has the same ids and a request that read another schema would answer with
    its rows, not with nothing; their titles carry that workspace's slug and never pass as ours."""
    if listing.status != 200:
        return f"{listing.slug}: status {listing.status}"
    own = tenants[listing.slug].titles
    foreign = sorted(listing.titles - own)
    if foreign:
        return f"{listing.slug}: another workspace's rows {foreign}"
    if listing.titles != own:
        return f"{listing.slug}: missing {sorted(own - listing.titles)}"
    return None


def test_the_isolation_check_catches_a_row_of_another_workspace() -> None:
    """The burst test below can only pass if this check can fail."""

    def tenant(slug: str) -> Tenant:
        admin = Member(uuid.uuid4(), f"admin@{slug}.example.com", "-", "admin")
        workspace = Workspace(uuid.uuid4(), slug, f"tenant_{slug}", f"tenant_{slug}", admin)
        return Tenant(workspace, {}, frozenset({f"{slug} 1"}))

    tenants = {"ws_a": tenant("ws_a"), "ws_b": tenant("ws_b")}
    assert listing_faults(Listing("ws_a", 200, frozenset({"ws_a 1"})), tenants) is None
    assert "another workspace" in str(
        listing_faults(Listing("ws_a", 200, frozenset({"ws_a 1", "ws_b 1"})), tenants)
    )
    assert "another workspace" in str(
        listing_faults(Listing("ws_a", 200, frozenset({"ws_b 1"})), tenants)
    )
    assert "missing" in str(listing_faults(Listing("ws_a", 200, frozenset()), tenants))
    assert "status 503" in str(listing_faults(Listing("ws_a", 503, frozenset()), tenants))


@pytest.mark.slow
@pytest.mark.usefixtures("enough_file_descriptors")
def test_a_thousand_concurrent_requests_over_ten_workspaces_are_all_answered_in_isolation(
    database_url: str, factory: Factory
) -> None:
    workspaces = [factory.workspace() for _ in range(BURST_WORKSPACES)]

    async def seed(base_url: str) -> list[Tenant]:
        async with http_client(base_url, BURST_WORKSPACES) as http:
            return list(
                await asyncio.gather(
                    *(seed_tickets(http, factory, ws, BURST_TICKETS_EACH) for ws in workspaces)
                )
            )

    # `helpdesk serve` as deployed, in its own process, with every setting at its default
    # (pool 10 + 5, a workspace's share 0.5, a 20 s wait bound, 200 requests/s per workspace)
    # except fast password hashing.
    with helpdesk_serve(database_url, password_hash_profile="fast") as base_url:
        seeded = asyncio.run(seed(base_url))
        # Round-robin, so requests side by side belong to different workspaces.
        plan = list(itertools.islice(itertools.cycle(seeded), BURST_REQUESTS))
        answers = run_burst(base_url, [Call("GET", TICKETS, t.headers) for t in plan])
        metrics = httpx.get(f"{base_url}/metrics").text

    samples = metric_samples(metrics)
    assert samples[("helpdesk_db_pool_size", frozenset())] == 10
    assert samples[("helpdesk_workspace_connection_limit", frozenset())] == 7  # floor(15 * 0.5)
    tenants = {t.slug: t for t in seeded}
    listings = [
        Listing(
            tenant.slug,
            answer.status,
            frozenset(item["title"] for item in answer.body["items"])
            if answer.status == 200
            else frozenset(),
        )
        for tenant, answer in zip(plan, answers, strict=True)
    ]
    wrong = [fault for fault in (listing_faults(x, tenants) for x in listings) if fault]
    codes = Counter((a.status, a.code, a.error) for a in answers)
    assert wrong == [], f"{len(wrong)} of {BURST_REQUESTS} answers wrong: {codes}"
    assert codes == {(200, None, None): BURST_REQUESTS}


# --- the noisy neighbour: one workspace's burst queues behind itself -------------------------

NOISY_BURST = 300
NEIGHBOUR_REQUESTS = 50


@dataclass(frozen=True)
class Reply:
    status: int
    code: str | None
    retry_after: str | None


async def reply(response: Awaitable[httpx.Response]) -> Reply:
    answered = await response
    code = None
    if answered.headers.get("content-type", "").startswith("application/json"):
        body = answered.json()
        code = body.get("code") if isinstance(body, dict) else None
    return Reply(answered.status_code, code, answered.headers.get("retry-after"))


def retry_after_is_seconds(value: str | None) -> bool:
    return value is not None and value.isdigit() and int(value) >= 1


def test_a_workspaces_burst_is_refused_with_503_while_another_workspace_is_served(
    database_url: str, factory: Factory
) -> None:
    settings = Settings(
        database_url=database_url,
        password_hash_profile="fast",
        pool_size=4,
        pool_max_overflow=0,
        workspace_pool_share=0.5,
        pool_wait_seconds=0.2,
    )
    noisy_ws, quiet_ws = factory.workspace(), factory.workspace()

    async def scenario(served: Served) -> tuple[list[Reply], list[Reply], int]:
        per_workspace = served.path.admission.per_key
        async with http_client(served.base_url, 2) as http:
            noisy = await seed_tickets(http, factory, noisy_ws, 1)
            quiet = await seed_tickets(http, factory, quiet_ws, 1)
        finished = 0

        async def noisy_get(http: httpx.AsyncClient) -> Reply:
            nonlocal finished
            try:
                return await reply(http.get(TICKETS, headers=noisy.headers))
            finally:
                finished += 1

        # Every list request appends to its workspace's audit chain under the chain lock:
        # held from outside, it keeps each of the noisy workspace's admitted requests on its
        # connection, in PostgreSQL, for as long as this test wants.
        async with (
            http_client(served.base_url, NOISY_BURST) as noisy_http,
            http_client(served.base_url, 1) as quiet_http,
        ):
            async with holding_workspace_lock(
                database_url, noisy_ws.schema_name, LockKey.AUDIT_CHAIN
            ) as lock:
                burst = asyncio.gather(*(noisy_get(noisy_http) for _ in range(NOISY_BURST)))

                async def share_taken() -> bool:
                    return await lock.waiters() == per_workspace

                await until(share_taken, "the noisy workspace to hold its whole share")
                # The neighbour's requests run while the noisy workspace holds its share and
                # the rest of its burst waits for it.
                neighbour = [
                    await reply(quiet_http.get(TICKETS, headers=quiet.headers))
                    for _ in range(NEIGHBOUR_REQUESTS)
                ]

                async def burst_refused() -> bool:
                    return finished >= NOISY_BURST - per_workspace

                await until(burst_refused, "the rest of the noisy burst to be answered")
                assert await lock.waiters() == per_workspace
            # The chain lock is released: the requests that held the share finish.
            return list(await burst), neighbour, per_workspace

    with serving(settings, database_url) as served:
        noisy_replies, neighbour, per_workspace = asyncio.run(scenario(served))

    assert per_workspace == 2  # floor((4 + 0) * 0.5)
    assert neighbour == [Reply(200, None, None)] * NEIGHBOUR_REQUESTS
    kinds = Counter((r.status, r.code) for r in noisy_replies)
    assert set(kinds) <= {(200, None), (503, "overloaded")}, kinds
    assert kinds[(503, "overloaded")] >= 1, kinds
    # Exactly the workspace's share reached the database; not one request more.
    assert kinds[(200, None)] == per_workspace, kinds
    refused = [r for r in noisy_replies if r.status == 503]
    assert all(retry_after_is_seconds(r.retry_after) for r in refused), refused[:3]


# --- the request rate limit ------------------------------------------------------------------

RATE_BURST = 3
RATE_REQUESTS = 10


def test_a_workspace_over_its_request_rate_gets_429_and_another_workspace_does_not(
    database_url: str, factory: Factory
) -> None:
    # A rate so low that no token refills while the test runs: exactly the burst is admitted.
    rate = 0.001
    settings = Settings(
        database_url=database_url,
        password_hash_profile="fast",
        workspace_rate_per_second=rate,
        workspace_rate_burst=RATE_BURST,
    )
    limited_ws, other_ws = factory.workspace(), factory.workspace()
    limited_headers = factory.headers(limited_ws.admin, limited_ws)
    other_headers = factory.headers(other_ws.admin, other_ws)

    async def scenario(base_url: str) -> tuple[list[Reply], list[Reply], str]:
        async with http_client(base_url, RATE_REQUESTS) as http:
            limited = await asyncio.gather(
                *(reply(http.get(TICKETS, headers=limited_headers)) for _ in range(RATE_REQUESTS))
            )
            other = [
                await reply(http.get(TICKETS, headers=other_headers)) for _ in range(RATE_BURST)
            ]
            metrics = await http.get("/metrics")
            assert metrics.status_code == 200
            return list(limited), other, metrics.text

    with serving(settings, database_url) as served:
        limited, other, metrics = asyncio.run(scenario(served.base_url))

    kinds = Counter((r.status, r.code) for r in limited)
    assert kinds == {(200, None): RATE_BURST, (429, "rate_limited"): RATE_REQUESTS - RATE_BURST}
    assert all(retry_after_is_seconds(r.retry_after) for r in limited if r.status == 429)
    assert other == [Reply(200, None, None)] * RATE_BURST

    samples = metric_samples(metrics)
    refused = {
        labels: value
        for (name, labels), value in samples.items()
        if name == "helpdesk_requests_refused_total"
    }
    assert refused[frozenset({("reason", "rate_limited")})] == RATE_REQUESTS - RATE_BURST
    assert samples[("helpdesk_workspace_rate_limit_per_second", frozenset())] == rate
    assert samples[("helpdesk_workspace_rate_limit_burst", frozenset())] == RATE_BURST
    assert samples[("helpdesk_workspace_connection_limit", frozenset())] == 7  # floor(15 * 0.5)


# --- backends terminated during concurrent writes --------------------------------------------

WRITE_WORKSPACES = 3
WRITES_EACH = 100
TERMINATIONS = 3
RETRY_ROUNDS = 20


@dataclass(frozen=True)
class Write:
    """One ticket creation: its workspace, its Idempotency-Key and its (unique) title."""

    tenant: Tenant
    key: str
    title: str

    def send(self, http: httpx.AsyncClient) -> Awaitable[httpx.Response]:
        headers = {**self.tenant.headers, "Idempotency-Key": self.key}
        body = {"title": self.title, "customer_email": "writer@example.com"}
        return http.post(TICKETS, json=body, headers=headers)


@dataclass(frozen=True)
class Written:
    write: Write
    status: int
    code: str | None
    retry_after: str | None
    ticket_id: int | None
    replayed: bool
    body: Any


async def written(write: Write, response: Awaitable[httpx.Response]) -> Written:
    answered = await response
    body = answered.json()
    return Written(
        write,
        answered.status_code,
        body.get("code"),
        answered.headers.get("retry-after"),
        body.get("id") if answered.status_code == 201 else None,
        answered.headers.get("idempotency-replayed") == "true",
        body,
    )


def stored_tickets(runtime: Runtime, schema: str) -> dict[int, str]:
    tickets = table("tickets", column("id"), column("title"), schema=schema)
    with runtime.engine.connect() as conn:
        return {row.id: row.title for row in conn.execute(select(tickets.c.id, tickets.c.title))}


@pytest.mark.slow
def test_terminated_backends_during_writes_lose_nothing_and_keyed_retries_duplicate_nothing(
    settings: Settings, database_url: str, factory: Factory, runtime: Runtime
) -> None:
    # The app's connections carry a name of their own, so exactly they can be terminated.
    app_name = unique_application_name("helpdesk_writes")
    app_url = tagged_url(database_url, app_name)
    tenants = [
        Tenant(ws, factory.headers(ws.admin, ws), frozenset())
        for ws in (factory.workspace() for _ in range(WRITE_WORKSPACES))
    ]
    # Interleaved, so the burst writes to every workspace at once.
    writes = [
        Write(tenant, str(uuid.uuid4()), f"{tenant.slug} write {n}")
        for n in range(WRITES_EACH)
        for tenant in tenants
    ]
    total = len(writes)

    async def scenario(base_url: str) -> dict[str, object]:
        finished = 0
        terminated: list[int] = []

        async def first_attempt(http: httpx.AsyncClient, write: Write) -> Written:
            nonlocal finished
            try:
                return await written(write, write.send(http))
            finally:
                finished += 1

        async def terminate_during_burst() -> None:
            # Spread over the burst by progress, not by time: after each quarter of it.
            for round_ in range(1, TERMINATIONS + 1):
                threshold = total * round_ // (TERMINATIONS + 1)

                async def reached(threshold: int = threshold) -> bool:
                    return finished >= threshold

                await until(reached, f"{threshold} writes answered")
                terminated.append(await terminate_backends(database_url, app_name))

        async with http_client(base_url, total) as http:
            killer = asyncio.create_task(terminate_during_burst())
            first = await asyncio.gather(*(first_attempt(http, w) for w in writes))
            await killer

            # The service is back at once: the next request of each workspace succeeds.
            after = [await reply(http.get(TICKETS, headers=t.headers)) for t in tenants]

            # Every write that did not answer 201 is retried with its own key until it does.
            final = {w.write.key: w for w in first if w.status == 201}
            pending = [w.write for w in first if w.status != 201]
            retried = len(pending)
            for _ in range(RETRY_ROUNDS):
                if not pending:
                    break
                again = await asyncio.gather(*(written(w, w.send(http)) for w in pending))
                final.update((w.write.key, w) for w in again if w.status == 201)
                pending = [w.write for w in again if w.status != 201]

            # A write answered 201 and sent again with its key is answered with the first
            # result, and creates nothing.
            replays = [
                await written(w.write, w.write.send(http)) for w in first if w.status == 201
            ][:10]
        return {
            "first": first,
            "terminated": terminated,
            "after": after,
            "final": final,
            "pending": pending,
            "retried": retried,
            "replays": replays,
        }

    with serving(settings, app_url) as served:
        outcome = asyncio.run(scenario(served.base_url))
    first: list[Written] = outcome["first"]  # type: ignore[assignment]
    final: dict[str, Written] = outcome["final"]  # type: ignore[assignment]
    replays: list[Written] = outcome["replays"]  # type: ignore[assignment]
    terminated: list[int] = outcome["terminated"]  # type: ignore[assignment]

    # The faults happened, while writes were in flight.
    assert len(terminated) == TERMINATIONS
    assert sum(terminated) >= 1, terminated

    # Answers during the faults: 201 or 503 (with Retry-After), never a 500.
    kinds = Counter((w.status, w.code) for w in first)
    assert set(kinds) <= {
        (201, None),
        (503, "database_unavailable"),
        (503, "overloaded"),
    }, kinds
    assert all(retry_after_is_seconds(w.retry_after) for w in first if w.status == 503)

    # Every acknowledged write is in the database, as acknowledged.
    stored = {t.slug: stored_tickets(runtime, t.workspace.schema_name) for t in tenants}
    for w in first:
        if w.status == 201:
            assert w.ticket_id is not None
            assert stored[w.write.tenant.slug].get(w.ticket_id) == w.write.title, w

    # The next requests succeed.
    assert outcome["after"] == [Reply(200, None, None)] * WRITE_WORKSPACES

    # Retried with their keys, the refused writes all land, each exactly once.
    assert outcome["pending"] == [], f"still refused after {RETRY_ROUNDS} rounds"
    assert set(final) == {w.key for w in writes}
    for tenant in tenants:
        titles = sorted(stored[tenant.slug].values())
        assert titles == sorted(w.title for w in writes if w.tenant is tenant), tenant.slug
    for w in final.values():
        assert stored[w.write.tenant.slug].get(w.ticket_id or 0) == w.write.title, w

    # A replayed 201: the same ticket, marked as a replay, and nothing new stored.
    assert replays, "no write was acknowledged on its first attempt"
    for again in replays:
        original = final[again.write.key]
        assert (again.status, again.ticket_id, again.replayed) == (
            201,
            original.ticket_id,
            True,
        ), again.body
    after_replays = {t.slug: stored_tickets(runtime, t.workspace.schema_name) for t in tenants}
    assert after_replays == stored


# --- PostgreSQL stopped and started under load ------------------------------------------------

LOAD_WORKERS = 4
ANSWERS_PER_PHASE = 20


@dataclass(frozen=True)
class Timed:
    """An answer, with the database's state when the request was sent and when it returned."""

    sent: str
    returned: str
    reply: Reply


def test_a_postgresql_restart_under_load_is_survived_without_restarting_the_app() -> None:
    with restartable_postgres() as postgres:
        # Set up as production is: the owner migrates, the app and provisioning are the service.
        url, owner_url = postgres.helpdesk_database()
        settings = Settings(database_url=url, password_hash_profile="fast", pool_size=4)
        owner = Runtime.connect(settings, owner_url, owner_url)
        try:
            upgrade_public(owner.engine)
        finally:
            owner.engine.dispose()
        service = Runtime.connect(settings, url, owner_url)
        try:
            workspace = Factory(service).workspace()
            headers = Factory(service).headers(workspace.admin, workspace)
        finally:
            service.engine.dispose()

        state = "up"
        answers: list[Timed] = []
        readiness: dict[str, Reply] = {}

        def seen(sent: str, returned: str) -> int:
            return sum(1 for a in answers if (a.sent, a.returned) == (sent, returned))

        async def load(http: httpx.AsyncClient, stop: asyncio.Event) -> None:
            while not stop.is_set():
                sent = state
                answered = await reply(http.get(TICKETS, headers=headers))
                answers.append(Timed(sent, state, answered))
                # Paced: a refused request returns at once, and so would the next.
                await asyncio.sleep(0.01)

        async def scenario(base_url: str) -> None:
            nonlocal state
            stop = asyncio.Event()
            async with http_client(base_url, LOAD_WORKERS + 1) as http:
                workers = [asyncio.create_task(load(http, stop)) for _ in range(LOAD_WORKERS)]
                try:

                    async def answered_in(phase: str) -> bool:
                        return seen(phase, phase) >= ANSWERS_PER_PHASE

                    await until(lambda: answered_in("up"), "answers before the stop")
                    state = "stopping"
                    await asyncio.to_thread(postgres.stop)
                    state = "down"
                    await until(lambda: answered_in("down"), "answers while it is down")
                    readiness["down"] = await reply(http.get("/readyz"))
                    state = "starting"
                    await asyncio.to_thread(postgres.start)
                    state = "up again"
                    await until(lambda: answered_in("up again"), "answers after the start")
                    readiness["up again"] = await reply(http.get("/readyz"))
                finally:
                    stop.set()
                    await asyncio.gather(*workers)

        with serving(settings, url) as served:
            asyncio.run(scenario(served.base_url))

    def kinds(sent: str, returned: str) -> Counter[tuple[int, str | None]]:
        return Counter(
            (a.reply.status, a.reply.code)
            for a in answers
            if (a.sent, a.returned) == (sent, returned)
        )

    assert set(kinds("up", "up")) == {(200, None)}
    # While it is down: 503 with Retry-After, and not ready.
    assert set(kinds("down", "down")) <= {
        (503, "database_unavailable"),
        (503, "overloaded"),
    }, kinds("down", "down")
    assert all(
        retry_after_is_seconds(a.reply.retry_after) for a in answers if a.reply.status == 503
    )
    assert (readiness["down"].status, readiness["down"].code) == (503, "database_unavailable")
    # After the start, the same app answers again: every request sent since succeeds.
    assert set(kinds("up again", "up again")) == {(200, None)}
    assert readiness["up again"] == Reply(200, None, None)
    # Across the transitions, only those two kinds of answer.
    assert {(a.reply.status, a.reply.code) for a in answers} <= {
        (200, None),
        (503, "database_unavailable"),
        (503, "overloaded"),
    }
