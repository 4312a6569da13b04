"""`helpdesk serve` in a process of its own, as an operator starts it, for load tests.

A server in a thread of the test process shares the test's interpreter lock and, under
pytest-cov, runs traced: a burst would measure both. A process of its own serves as deployed.
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[2]
# Guards against a hang only.
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
# The `helpdesk` console script, run by this interpreter whatever PATH says.
_COMMAND = "from helpdesk.cli import app; app()"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _environment(database_url: str, settings: dict[str, str]) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        # Not traced by the test run's coverage, and configured only by what is given here.
        if not key.startswith(("PYTEST_", "COV_CORE_", "COVERAGE_", "HELPDESK_"))
        and key != "DATABASE_URL"
    }
    env.update({f"HELPDESK_{name.upper()}": value for name, value in settings.items()})
    env["DATABASE_URL"] = database_url
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def helpdesk_serve(database_url: str, **settings: str) -> Iterator[str]:
    """Run ``helpdesk serve`` on a free loopback port against ``database_url``, with
    ``HELPDESK_<NAME>`` set from ``settings`` and every other setting at its default; yield
    its base URL, and stop it (SIGTERM) when the block ends."""
    port = _free_port()
    with tempfile.NamedTemporaryFile("w+", prefix="helpdesk-serve-", suffix=".log") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and command
            [sys.executable, "-c", _COMMAND, "serve", "--port", str(port)],
            cwd=ROOT,
            env=_environment(database_url, settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(process, base_url, log)
            yield base_url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], base_url: str, log: IO[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise RuntimeError(f"helpdesk serve exited with {process.returncode}:\n{log.read()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"helpdesk serve did not start:\n{log.read()}")
        time.sleep(0.05)
