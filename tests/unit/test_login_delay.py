"""The sign-in throttle's delay as a table: free attempts, then 1 s doubling to a 30 s cap."""

from datetime import UTC, datetime, timedelta

import pytest

from auth.throttle import MAX_DELAY_SECONDS, retry_delay, seconds_to_wait

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


@pytest.mark.parametrize(
    ("attempts", "allowance", "delay"),
    [
        (0, 5, 0),
        (1, 5, 0),
        (4, 5, 0),
        (5, 5, 1),
        (6, 5, 2),
        (7, 5, 4),
        (8, 5, 8),
        (9, 5, 16),
        (10, 5, 30),  # 32 capped
        (11, 5, 30),
        (1_000, 5, 30),  # no overflow however long the guessing goes on
        (19, 20, 0),
        (20, 20, 1),
        (21, 20, 2),
    ],
)
def test_the_delay_after_so_many_attempts(attempts: int, allowance: int, delay: int) -> None:
    assert retry_delay(attempts, allowance) == delay
    assert delay <= MAX_DELAY_SECONDS


@pytest.mark.parametrize(
    ("attempts", "since_last", "wait"),
    [
        (0, None, 0),  # never tried
        (4, timedelta(0), 0),  # still within the free attempts
        (5, timedelta(0), 1),  # the 6th waits 1 s after the 5th
        (5, timedelta(milliseconds=400), 1),  # rounded up: Retry-After is whole seconds
        (5, timedelta(seconds=1), 0),  # the delay has passed
        (7, timedelta(seconds=1), 3),  # 4 s after the 7th
        (10, timedelta(seconds=29), 1),
        (10, timedelta(seconds=30), 0),
        (50, timedelta(minutes=5, seconds=1), 0),  # older than the window: forgotten
    ],
)
def test_the_wait_before_the_next_attempt(
    attempts: int, since_last: timedelta | None, wait: int
) -> None:
    last = None if since_last is None else NOW - since_last
    assert seconds_to_wait(attempts, last, NOW, allowance=5, window=WINDOW) == wait
