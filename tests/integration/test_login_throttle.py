"""The sign-in counters in public.login_throttle are swept once past their window, and a sweep
that deletes a counter while a sign-in is counting on it loses no attempt."""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from auth.throttle import account_key, address_key, count_attempt, forget_stale
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from helpdesk.worker.schedule import default_schedule

WAIT_SECONDS = 30.0


def _put(runtime: Runtime, key: str, attempts: int, at: datetime) -> None:
    with transaction(runtime.sessions) as session:
        session.execute(
            text(
                "INSERT INTO public.login_throttle (key, attempts, last_attempt_at)"
                " VALUES (:k, :a, :at)"
            ),
            {"k": key, "a": attempts, "at": at},
        )


def _attempts(runtime: Runtime, key: str) -> int | None:
    with transaction(runtime.sessions) as session:
        return session.scalar(
            text("SELECT attempts FROM public.login_throttle WHERE key = :k"), {"k": key}
        )


def _key() -> str:
    return address_key(f"sweep-{uuid.uuid4().hex}")


def test_the_sweep_forgets_counters_past_the_window_and_keeps_those_at_it(
    runtime: Runtime,
) -> None:
    now = datetime.now(UTC)
    window = timedelta(seconds=runtime.settings.login_window_seconds)
    stale, at_edge, fresh = _key(), _key(), _key()
    _put(runtime, stale, 7, now - window - timedelta(seconds=1))
    _put(runtime, at_edge, 7, now - window)
    _put(runtime, fresh, 2, now)

    with transaction(runtime.sessions) as session:
        forgotten = forget_stale(session, runtime.settings, now)

    assert forgotten >= 1
    assert [_attempts(runtime, k) for k in (stale, at_edge, fresh)] == [None, 7, 2]


@pytest.mark.parametrize(("slugs", "swept"), [(None, True), (["no-such-workspace"], False)])
def test_the_worker_s_retention_pass_sweeps_only_when_it_covers_the_deployment(
    runtime: Runtime, service_runtime: Runtime, slugs: list[str] | None, swept: bool
) -> None:
    stale = _key()
    _put(runtime, stale, 3, datetime.now(UTC) - timedelta(days=1))
    # As deployed: the service role, which owns nothing, runs the worker.
    schedule = default_schedule(service_runtime, slugs=slugs)
    [retention] = [job for job in schedule if job.name == "retention"]

    retention.run(lambda: False)

    assert (_attempts(runtime, stale) is None) is swept


def test_an_attempt_whose_counter_is_swept_while_it_waits_for_the_lock_is_still_counted(
    runtime: Runtime,
) -> None:
    email, workspace, address = "sweep@example.com", f"ws-{uuid.uuid4().hex[:8]}", "192.0.2.7"
    account = account_key(email, workspace)
    _put(runtime, account, 4, datetime.now(UTC) - timedelta(days=1))
    counted: list[BaseException | None] = []

    def sign_in() -> None:
        try:
            with transaction(runtime.sessions) as session:
                count_attempt(
                    session, runtime.settings, email=email, workspace=workspace, address=address
                )
            counted.append(None)
        except BaseException as exc:  # noqa: BLE001 - reported in the test's thread
            counted.append(exc)

    with runtime.engine.connect() as sweeper:
        # The sweep holds the stale counter: the sign-in finds the row there (so inserts
        # nothing) and then waits for its lock, which the sweep releases by deleting the row.
        sweeper.execute(
            text("SELECT 1 FROM public.login_throttle WHERE key = :k FOR UPDATE"), {"k": account}
        )
        attempt = threading.Thread(target=sign_in)
        attempt.start()
        _wait_until_blocked(runtime)
        sweeper.execute(text("DELETE FROM public.login_throttle WHERE key = :k"), {"k": account})
        sweeper.commit()
        attempt.join(WAIT_SECONDS)

    assert counted == [None]
    assert _attempts(runtime, account) == 1


def _wait_until_blocked(runtime: Runtime) -> None:
    """Until some session of this database waits on a row lock on login_throttle."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query LIKE '%login_throttle%FOR UPDATE%'"
    )
    for _ in range(int(WAIT_SECONDS / 0.05)):
        with transaction(runtime.sessions) as session:
            if session.scalar(query):
                return
        threading.Event().wait(0.05)
    pytest.fail("the sign-in never waited on the counter's lock")
