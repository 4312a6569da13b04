"""The worker: one thread per scheduled job, each running its job every so often until told to
stop, recording what it did for ``/metrics``.

One thread per job rather than one for all: a retention run over a million tickets must not hold
up the five-second delivery. Each thread uses the runtime's synchronous engine, like the CLI
jobs (a run holds at most two of its connections: the run's transaction and a batch's).
"""

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from helpdesk.runtime import Runtime
from helpdesk.worker.schedule import ScheduledJob, default_schedule
from helpdesk.worker.stats import WorkerStats
from tenants.jobs import JobReport

log = logging.getLogger("helpdesk.worker")


# The first run of a job waits a random part of its interval, up to this: processes started
# together (a deploy, `--workers N`) spread their runs instead of all working every workspace
# at the same moment, and a restart does not always begin with a full retention pass.
MAX_FIRST_DELAY_SECONDS = 300.0


def first_delay(every_seconds: float, draw: Callable[[], float] = random.random) -> float:
    return draw() * min(every_seconds, MAX_FIRST_DELAY_SECONDS)


def _every(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 3600 else f"{seconds / 3600:g} h"


class Worker:
    def __init__(
        self,
        jobs: Sequence[ScheduledJob],
        *,
        notices: Sequence[str] = (),
        delay: Callable[[float], float] = first_delay,
    ) -> None:
        self.jobs = list(jobs)
        self.notices = list(notices)
        self._first_delay = delay
        self.stats = WorkerStats({job.name: job.every_seconds for job in self.jobs})
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @classmethod
    def for_runtime(cls, runtime: Runtime, *, slugs: Sequence[str] | None = None) -> "Worker":
        """The default schedule (over every workspace, or only ``slugs``), with what the
        operator should hear once at start-up."""
        notices = []
        if not runtime.settings.mail_provider_list:
            notices.append(
                "no e-mail provider is configured (HELPDESK_MAIL_PROVIDERS or "
                "HELPDESK_SMTP_HOST): e-mails stay queued in the outbox until one is"
            )
        return cls(default_schedule(runtime, slugs=slugs), notices=notices)

    def start(self) -> None:
        plan = ", ".join(f"{job.name} every {_every(job.every_seconds)}" for job in self.jobs)
        log.info("worker started: %s", plan)
        for notice in self.notices:
            log.warning("worker: %s", notice)
        for job in self.jobs:
            thread = threading.Thread(
                target=self._loop,
                args=(job,),
                name=f"worker-{job.name}",
                # A run still going when the process exits (past stop's bound) is abandoned, not
                # waited for: its committed batches stay, and the next run carries on.
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float) -> bool:
        """Stop every job: a run under way finishes its current workspace and skips the rest.
        Waits up to ``timeout`` seconds in all; True when every thread has ended."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        running = [thread.name for thread in self._threads if thread.is_alive()]
        if running:
            log.warning("worker: still running after %g s, left behind: %s", timeout, running)
            return False
        log.info("worker stopped")
        return True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _loop(self, job: ScheduledJob) -> None:
        if self._stop.wait(self._first_delay(job.every_seconds)):
            return
        while not self._stop.is_set():
            began = time.monotonic()
            self.run_once(job)
            # Every ``every_seconds`` from the start of one run to the next, or at once when a
            # run took longer than that.
            if self._stop.wait(max(0.0, job.every_seconds - (time.monotonic() - began))):
                return

    def run_once(self, job: ScheduledJob) -> JobReport[Any] | None:
        """One run of ``job``, recorded; None when it failed before reaching a workspace."""
        try:
            report = job.run(self._stop.is_set)
        except Exception:
            # The database unreachable, typically; a bug too, and then the traceback is here.
            # The thread carries on: the next run may well succeed, and /metrics shows failures.
            log.exception("worker: %s failed before it reached any workspace", job.name)
            self.stats.crashed(job.name)
            return None
        self.stats.ran(job.name, report)
        if job.backlog is not None:
            backlog = job.backlog
            self.stats.backlog_counted(
                [
                    (o.slug, backlog(o.result) if o.result is not None else None)
                    for o in report.workspaces
                ]
            )
        if job.fills_pool:
            for fill in report.results:
                self.stats.pool_filled(fill)
        done = job.describe(report)
        if done:
            log.info("worker: %s: %s", job.name, done)
        return report
