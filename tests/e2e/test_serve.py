"""`helpdesk serve --workers N`: N processes answer, and SIGTERM lets in-flight requests finish
(within HELPDESK_SHUTDOWN_GRACE_SECONDS) before the command exits 0.

A request is kept in flight by the database: the test holds an ACCESS EXCLUSIVE lock on the
workspace's tickets table, so listing tickets waits for it however long the test needs.
"""

import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest
from psycopg import sql

from helpdesk.core.embedded import EmbeddedPostgres
from tests.support.factories import Factory, Workspace

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Bounds on waits, so that a hang fails the test instead of stalling the run; none is a
# measurement.
START_TIMEOUT_SECONDS = 120.0
STEP_TIMEOUT_SECONDS = 60.0
# The drain a SIGTERM is given in the test that lets a request finish: the command must have
# exited within it once the request is released.
GRACE_SECONDS = 30


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    output: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _env(**values: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_CORE_", "COVERAGE_"))
        and key not in ("DATABASE_URL", "HELPDESK_DATABASE_URL")
    }
    # The scheduled jobs off unless a test turns them on: the database holds every workspace
    # the test process has made, and working them all would only slow these tests down.
    env.update(
        {
            "HELPDESK_PASSWORD_HASH_PROFILE": "fast",
            "HELPDESK_WORKER": "false",
            "PYTHONUNBUFFERED": "1",
            **values,
        }
    )
    return env


def _wait_for(condition: Callable[[], bool], what: str, served: Served) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}:\n{served.log()}")
        time.sleep(0.05)


@contextmanager
def _serving(home: Path, env: dict[str, str], *args: str) -> Iterator[Served]:
    """``helpdesk serve`` in a process of its own, ready; it and its workers are killed if the
    test did not stop them."""
    port = _free_port()
    output = home / f"serve-{port}.out"
    command = [str(Path(sys.executable).with_name("helpdesk")), "serve", "--port", str(port)]
    with output.open("wb") as sink:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [*command, *args], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    served = Served(process, port, output)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not _ready(served):
            if process.poll() is not None:
                pytest.fail(f"serve exited early:\n{served.log()}")
            if time.monotonic() > deadline:
                pytest.fail(f"serve never became ready:\n{served.log()}")
            time.sleep(0.2)
        yield served
    finally:
        if process.poll() is None:
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            process.wait()


def _ready(served: Served) -> bool:
    try:
        return httpx.get(f"{served.base_url}/readyz", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _listens(pid: int, port: int) -> bool:
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in connections)


def _workers(served: Served) -> set[int]:
    """The processes accepting on the port: with several workers, the command's children (it
    binds the port for them and supervises); with one, the command itself."""
    pid = served.process.pid
    children = {child.pid for child in psutil.Process(pid).children(recursive=True)}
    return {worker for worker in children if _listens(worker, served.port)} or {pid}


def _all_workers(served: Served, expected: int) -> set[int]:
    """The workers once ``expected`` of them listen: ready means one worker answered, and on a
    busy machine the others may still be importing the app."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    workers = _workers(served)
    while len(workers) < expected and time.monotonic() < deadline:
        time.sleep(0.2)
        workers = _workers(served)
    return workers


def _answering_pid(served: Served, connection: http.client.HTTPConnection) -> int:
    """The process at the other end of an open keep-alive connection."""
    client_port = connection.sock.getsockname()[1]
    for pid in _workers(served):
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.laddr.port == served.port and conn.raddr and conn.raddr.port == client_port:
                return pid
    pytest.fail(f"no worker holds the connection from port {client_port}")


def _answering_pids(served: Served, until: int, attempts: int = 200) -> set[int]:
    """Which workers answer: connections are kept open, so each is held by whoever took it,
    until ``until`` workers have answered (the kernel chooses; ``attempts`` bounds the search)."""
    connections: list[http.client.HTTPConnection] = []
    pids: set[int] = set()
    try:
        while len(pids) < until and len(connections) < attempts:
            connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
            connections.append(connection)
            connection.request("GET", "/healthz")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            pids.add(_answering_pid(served, connection))
    finally:
        for connection in connections:
            connection.close()
    return pids


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@contextmanager
def _tickets_locked(database_url: str, ws: Workspace) -> Iterator[psycopg.Connection]:
    """An ACCESS EXCLUSIVE lock on ``ws``'s tickets table: listing tickets waits on it. Held
    until the block ends, or until the caller rolls the connection back. ``database_url`` is
    the owner's: the service role the served app logs in as may not touch the table itself."""
    with psycopg.connect(_libpq(database_url)) as conn:
        table = sql.Identifier(ws.schema_name, "tickets")
        conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
        try:
            yield conn
        finally:
            conn.rollback()


def _waiting_on_the_lock(conn: psycopg.Connection, ws: Workspace) -> bool:
    waiting = conn.execute(
        "SELECT count(*) FROM pg_locks WHERE relation = to_regclass(%s) AND NOT granted",
        (f"{ws.schema_name}.tickets",),
    ).fetchone()
    return bool(waiting and waiting[0])


def _list_tickets(served: Served, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(
        f"{served.base_url}/api/v1/tickets", headers=headers, timeout=STEP_TIMEOUT_SECONDS * 2
    )


@pytest.fixture
def home() -> Iterator[Path]:
    # Not under pytest's tmp_path: run as root, the embedded server opens up the parents of its
    # data directory to its own OS user.
    path = Path(tempfile.mkdtemp(prefix="helpdesk-serve-workers-"))
    try:
        yield path
    finally:
        pgdata = path / "data" / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            EmbeddedPostgres(pgdata).stop()
        shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("processes", [2, 1])
def test_every_worker_answers_and_sigterm_lets_the_request_in_flight_finish(
    home: Path,
    database_url: str,
    owner_database_url: str,
    factory: Factory,
    ws: Workspace,
    processes: int,
) -> None:
    headers = factory.headers(ws.admin, ws)
    env = _env(
        DATABASE_URL=database_url,
        HELPDESK_DATA_DIR=str(home / "data"),
        HELPDESK_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS),
    )
    with _serving(home, env, "--workers", str(processes)) as served:
        workers = _all_workers(served, processes)
        assert len(workers) == processes, served.log()
        assert _answering_pids(served, until=processes) == workers
        assert _list_tickets(served, headers).status_code == 200
        # `make run` tells where the console is, and it is served there.
        assert f"web console: {served.base_url}/app/" in served.log()
        assert httpx.get(f"{served.base_url}/app/signin", timeout=10).status_code == 200

        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            _tickets_locked(owner_database_url, ws) as lock,
        ):
            in_flight: Future[httpx.Response] = pool.submit(_list_tickets, served, headers)
            _wait_for(lambda: _waiting_on_the_lock(lock, ws), "the request waits", served)

            served.process.send_signal(signal.SIGTERM)
            # Both workers have stopped accepting (they close their listening sockets when
            # they start to shut down), and the request is still being worked on.
            _wait_for(
                lambda: not any(_listens(pid, served.port) for pid in workers),
                "no worker accepts connections",
                served,
            )
            assert not in_flight.done()
            assert served.process.poll() is None

            lock.rollback()
            response = in_flight.result(timeout=STEP_TIMEOUT_SECONDS)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []
        assert served.process.wait(timeout=GRACE_SECONDS) == 0, served.log()
        assert not any(_alive(pid) for pid in workers)


def test_sigterm_does_not_wait_past_the_grace_for_a_stuck_request(
    home: Path, database_url: str, owner_database_url: str, factory: Factory, ws: Workspace
) -> None:
    headers = factory.headers(ws.admin, ws)
    env = _env(
        DATABASE_URL=database_url,
        HELPDESK_DATA_DIR=str(home / "data"),
        HELPDESK_SHUTDOWN_GRACE_SECONDS="1",
    )
    with _serving(home, env, "--workers", "2", "--no-worker") as served:
        workers = _workers(served)
        assert "scheduled jobs off" in served.log(), served.log()
        with (
            ThreadPoolExecutor(max_workers=1) as pool,
            _tickets_locked(owner_database_url, ws) as lock,
        ):
            stuck: Future[httpx.Response] = pool.submit(_list_tickets, served, headers)
            _wait_for(lambda: _waiting_on_the_lock(lock, ws), "the request waits", served)
            served.process.send_signal(signal.SIGTERM)
            # The lock is still held: the command exits anyway, once the grace has run out.
            assert served.process.wait(timeout=STEP_TIMEOUT_SECONDS) == 0, served.log()
            assert not any(_alive(pid) for pid in workers)
            try:
                status = stuck.result(timeout=STEP_TIMEOUT_SECONDS).status_code
            except httpx.TransportError:
                status = None
            assert status != 200
    assert "worker started" not in served.log()


def test_workers_share_the_embedded_server_the_command_started_and_stopped(home: Path) -> None:
    pgdata = home / "data" / "pgdata"
    env = _env(HELPDESK_DATA_DIR=str(home / "data"), HELPDESK_WORKER="true")
    with _serving(home, env, "--workers", "2") as served:
        assert len(_workers(served)) == 2, served.log()
        assert (pgdata / "postmaster.pid").exists()
        # As `make run` does: each process starts the scheduled jobs and says so.
        _wait_for(lambda: served.log().count("worker started") == 2, "both workers start", served)
        assert "no e-mail provider is configured" in served.log()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=STEP_TIMEOUT_SECONDS) == 0, served.log()
    assert not (pgdata / "postmaster.pid").exists(), "SIGTERM left the embedded server running"
    assert served.log().count("worker stopped") == 2, served.log()
