"""The worker's figures for /metrics: failures and the last success, a backlog that keeps a
busy workspace's last count rather than dropping it, and the schema pool's depth."""

from datetime import UTC, datetime

import pytest

from helpdesk.worker.loop import first_delay
from helpdesk.worker.stats import WorkerStats
from tenants.jobs import JobReport, WorkspaceOutcome
from tenants.pool import PoolFill

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _report(*outcomes: WorkspaceOutcome[str]) -> JobReport[str]:
    return JobReport("escalate", NOW, list(outcomes))


def test_a_run_with_a_failed_workspace_counts_it_and_is_no_success() -> None:
    ticks = iter([100.0, 200.0])
    stats = WorkerStats({"escalate": 60}, clock=lambda: next(ticks))
    stats.ran("escalate", _report(WorkspaceOutcome("a", result="ok")))
    stats.ran("escalate", _report(WorkspaceOutcome("a", error="boom"), WorkspaceOutcome("b")))
    stats.crashed("escalate")
    counts = stats.jobs()["escalate"]
    assert (counts.runs, counts.failures, counts.last_success) == (3, 2, 100.0)


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        # (slug, backlog or None when not counted) per run; the sum after the last run.
        ([[("a", {"email": 2}), ("b", {"webhook": 1})]], {"email": 2, "webhook": 1}),
        # b was busy (another process delivered there): its last count stays in the sum.
        ([[("a", {"email": 2}), ("b", {"webhook": 1})], [("a", {}), ("b", None)]], {"webhook": 1}),
        # b was not visited (suspended, deleted): it leaves the sum.
        ([[("a", {"email": 2}), ("b", {"webhook": 1})], [("a", {"email": 1})]], {"email": 1}),
        # Never counted: nothing to remember.
        ([[("a", None)]], {}),
    ],
)
def test_the_backlog_sums_the_last_count_of_each_workspace_visited(
    runs: list[list[tuple[str, dict[str, int] | None]]], expected: dict[str, int]
) -> None:
    stats = WorkerStats({"deliver": 5})
    assert stats.backlog() is None
    for outcomes in runs:
        stats.backlog_counted(outcomes)
    assert stats.backlog() == expected


@pytest.mark.parametrize(
    ("every", "draw", "delay"),
    [(1, 0.5, 0.5), (60, 0.0, 0.0), (60, 0.99, 59.4), (86_400, 0.5, 150.0), (86_400, 1.0, 300.0)],
)
def test_the_first_run_waits_a_random_part_of_the_interval_up_to_five_minutes(
    every: float, draw: float, delay: float
) -> None:
    assert first_delay(every, lambda: draw) == pytest.approx(delay)


def test_the_pool_shows_its_last_run_and_every_schema_built() -> None:
    stats = WorkerStats({"fill-schema-pool": 10})
    assert stats.pool() is None
    stats.pool_filled(PoolFill(built=5, found=0, depth=5))
    stats.pool_filled(PoolFill(built=2, found=3, depth=5))
    pool = stats.pool()
    assert pool is not None
    assert (pool.found, pool.depth, pool.built) == (3, 5, 7)
