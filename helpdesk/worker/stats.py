"""What the worker has done, per job, for ``/metrics``: runs, failures, the last fully
successful run, the outbox backlog the delivery job last counted, and the schema pool's depth
as the fill job last counted it."""

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from tenants.jobs import JobReport
from tenants.pool import PoolFill


@dataclass(frozen=True, slots=True)
class JobCounts:
    """One job's figures in this process. ``failures`` counts workspaces whose run failed, and
    runs that failed before reaching any workspace (the database unreachable, say);
    ``last_success`` (Unix time) is the end of the last run in which nothing failed."""

    every_seconds: float
    runs: int = 0
    failures: int = 0
    last_success: float | None = None


@dataclass(frozen=True, slots=True)
class PoolCounts:
    """The schema pool as this process's fill job saw it: ready schemas at the start of its last
    run (``found``: what claims left since the run before) and at its end (``depth``); ``built``,
    schemas it built in all."""

    found: int
    depth: int
    built: int


class WorkerStats:
    """Thread-safe: each job's thread records here, and a scrape reads from the event loop."""

    def __init__(
        self, intervals: Mapping[str, float], *, clock: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs = {name: JobCounts(every) for name, every in intervals.items()}
        # Per workspace, so that a workspace another process was delivering in (skipped as busy)
        # keeps the count this process saw last instead of dropping out of the sum.
        self._backlog: dict[str, Mapping[str, int]] | None = None
        self._pool: PoolCounts | None = None

    def ran(self, job: str, report: JobReport[Any]) -> None:
        failed = len(report.failed)
        with self._lock:
            counts = self._jobs[job]
            self._jobs[job] = replace(
                counts,
                runs=counts.runs + 1,
                failures=counts.failures + failed,
                last_success=self._clock() if failed == 0 else counts.last_success,
            )

    def crashed(self, job: str) -> None:
        with self._lock:
            counts = self._jobs[job]
            self._jobs[job] = replace(counts, runs=counts.runs + 1, failures=counts.failures + 1)

    def backlog_counted(self, outcomes: Sequence[tuple[str, Mapping[str, int] | None]]) -> None:
        """A delivery run's ``(slug, backlog by kind)`` per workspace it visited; ``None`` where
        it did not count (busy, or failed). Workspaces it did not visit leave the sum."""
        with self._lock:
            before = self._backlog or {}
            after: dict[str, Mapping[str, int]] = {}
            for slug, backlog in outcomes:
                if backlog is not None:
                    after[slug] = backlog
                elif slug in before:
                    after[slug] = before[slug]
            self._backlog = after

    def pool_filled(self, fill: PoolFill) -> None:
        with self._lock:
            built = self._pool.built if self._pool is not None else 0
            self._pool = PoolCounts(fill.found, fill.depth, built + fill.built)

    def pool(self) -> PoolCounts | None:
        """None until the fill job has run once (or when it does not run here)."""
        with self._lock:
            return self._pool

    def jobs(self) -> dict[str, JobCounts]:
        with self._lock:
            return dict(self._jobs)

    def backlog(self) -> dict[str, int] | None:
        """Messages waiting (not delivered, not given up) by kind, summed over workspaces; None
        until the delivery job has run once."""
        with self._lock:
            if self._backlog is None:
                return None
            total: dict[str, int] = {}
            for by_kind in self._backlog.values():
                for kind, count in by_kind.items():
                    total[kind] = total.get(kind, 0) + count
            return total
