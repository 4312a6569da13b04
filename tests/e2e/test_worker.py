"""The worker that runs by default: a served app escalates an overdue ticket by itself, with no
CLI run and no cron, and /metrics shows what its jobs did."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from helpdesk.app import create_app
from helpdesk.core.settings import Settings
from helpdesk.runtime import Runtime
from tests.support.factories import Factory, Workspace
from tests.support.live_server import LiveServer, live_server

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

API = "/api/v1"
# A bound on polling so that a worker that never runs fails the test instead of hanging it; not
# a measurement of how fast the worker is.
POLL_BOUND_SECONDS = 30.0


@pytest.fixture
def served_with_worker(settings: Settings, database_url: str) -> Iterator[LiveServer]:
    """The app as `helpdesk serve` runs it (worker on), every job once a second."""
    every_second = settings.model_copy(
        update={
            "escalate_every_seconds": 1.0,
            "auto_close_every_seconds": 1.0,
            "deliver_every_seconds": 1.0,
        }
    )
    runtime = Runtime.connect(every_second, database_url)
    try:
        with live_server(create_app(runtime, worker=True)) as server:
            yield server
    finally:
        runtime.engine.dispose()


def _poll(check: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + POLL_BOUND_SECONDS
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {POLL_BOUND_SECONDS:g} s: {what}")
        time.sleep(0.2)


def test_a_served_app_escalates_an_unanswered_critical_ticket_by_itself(
    served_with_worker: LiveServer, factory: Factory, ws: Workspace
) -> None:
    admin = factory.headers(ws.admin, ws)
    with httpx.Client(base_url=served_with_worker.base_url, headers=admin, timeout=30) as http:
        five_seconds = {"sla_hours": {"critical": 5 / 3600}, "auto_assign": False}
        assert http.put(f"{API}/settings", json=five_seconds).status_code == 200
        created = http.post(
            f"{API}/tickets",
            json={
                "title": "Checkout is down",
                "description": "Every payment fails",
                "priority": "critical",
                "customer_email": "buyer@example.com",
            },
        )
        assert created.status_code == 201, created.text
        ticket = created.json()
        assert (ticket["escalated"], ticket["assignee_id"]) == (False, None)

        def escalated() -> bool:
            shown = http.get(f"{API}/tickets/{ticket['id']}")
            assert shown.status_code == 200, shown.text
            return bool(shown.json()["escalated"])

        _poll(escalated, "the critical ticket is escalated")
        shown = http.get(f"{API}/tickets/{ticket['id']}").json()
        assert (shown["sla_breached"], shown["priority"], shown["status"]) == (
            True,
            "critical",
            "open",
        )

        # The outbox backlog appears once a delivery run has counted it.
        _poll(
            lambda: "helpdesk_outbox_backlog{" in http.get("/metrics").text,
            "a delivery run has counted the backlog",
        )
        metrics = http.get("/metrics").text
    runs = _samples(metrics, "helpdesk_job_runs_total")
    assert set(runs) == {"escalate", "auto-close", "deliver", "retention"}
    assert runs["escalate"] >= 1
    assert set(_samples(metrics, "helpdesk_job_last_success_timestamp_seconds")) >= {"escalate"}
    assert _samples(metrics, "helpdesk_job_interval_seconds")["retention"] == 86_400
    # The ticket's confirmation e-mail waits: no provider is configured.
    assert _samples(metrics, "helpdesk_outbox_backlog", label="kind")["email"] >= 1


def _samples(text: str, name: str, label: str = "job") -> dict[str, float]:
    """``name{<label>="x"} value`` lines of a Prometheus exposition, as {x: value}."""
    found = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            for pair in labels.split(","):
                key, _, quoted = pair.partition("=")
                if key == label:
                    found[quoted.strip('"')] = float(value)
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_helpdesk_worker_runs_the_jobs_alone_and_stops_cleanly_on_sigterm(
    database_url: str, tmp_path: Path, ws: Workspace
) -> None:
    port = _free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "COV_CORE_", "COVERAGE_", "HELPDESK_"))
        and key != "DATABASE_URL"
    }
    env.update(DATABASE_URL=database_url, HELPDESK_DELIVER_EVERY_SECONDS="1", PYTHONUNBUFFERED="1")
    output = tmp_path / "worker.out"
    # Only the test's workspace: the worker's database holds every workspace this test
    # process has made.
    command = [
        str(Path(sys.executable).with_name("helpdesk")),
        "worker",
        "--tenant",
        ws.slug,
        "--metrics-port",
        str(port),
    ]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)  # noqa: S603
    try:

        def delivered_twice() -> bool:
            if process.poll() is not None:
                pytest.fail(f"helpdesk worker exited:\n{output.read_text()}")
            try:
                metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.TransportError:
                return False
            return _samples(metrics, "helpdesk_job_runs_total").get("deliver", 0) >= 2

        _poll(delivered_twice, "the worker has delivered twice")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=POLL_BOUND_SECONDS) == 0, output.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = output.read_text()
    assert "worker started: escalate every 60 s, auto-close every 60 s, deliver every 1 s" in log
    assert "retention every 24 h" in log
    assert "worker stopped" in log
