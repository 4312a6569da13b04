"""Admission control and the per-workspace rate limit, as rules: no database, no server."""

import asyncio

import pytest

from helpdesk.core.admission import SWEEP_AT_LEAST, Admission, RateLimiter
from helpdesk.core.errors import Overloaded, RateLimited

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("capacity", "share", "per_key"),
    [
        (15, 0.5, 7),  # the defaults: pool 10 + overflow 5
        (4, 0.5, 2),
        (2, 0.5, 1),
        (1, 0.5, 1),  # a workspace always gets at least one connection
        (10, 1.0, 10),  # a share of 1 turns fairness off
        (10, 0.01, 1),
    ],
)
def test_a_workspace_may_hold_its_share_of_the_pool(
    capacity: int, share: float, per_key: int
) -> None:
    assert Admission(capacity, share, wait_seconds=1).per_key == per_key


async def _hold(admission: Admission, key: str, release: asyncio.Event) -> None:
    async with admission.slot(key):
        await release.wait()


def test_a_busy_workspace_waits_behind_itself_and_others_get_in() -> None:
    async def scenario() -> tuple[int, int, int]:
        admission = Admission(capacity=4, share=0.5, wait_seconds=0.05)
        release = asyncio.Event()
        holders = [asyncio.create_task(_hold(admission, "noisy", release)) for _ in range(2)]
        await asyncio.sleep(0)
        refused = 0
        try:
            async with admission.slot("noisy"):
                pass
        except Overloaded:
            refused += 1
        # The other half of the pool is still there for another workspace.
        async with admission.slot("quiet"):
            in_use = admission.stats.in_use
        release.set()
        await asyncio.gather(*holders)
        return refused, in_use, admission.stats.rejected

    refused, in_use, rejected = asyncio.run(scenario())
    assert (refused, in_use, rejected) == (1, 3, 1)


def test_the_pool_bound_holds_across_workspaces() -> None:
    async def scenario() -> int:
        admission = Admission(capacity=2, share=1.0, wait_seconds=0.05)
        release = asyncio.Event()
        holders = [asyncio.create_task(_hold(admission, key, release)) for key in ("a", "b")]
        await asyncio.sleep(0)
        try:
            async with admission.slot("c"):
                pass
        except Overloaded as refusal:
            retry_after = refusal.retry_after
        else:
            retry_after = 0
        release.set()
        await asyncio.gather(*holders)
        return retry_after

    assert asyncio.run(scenario()) >= 1


def test_slots_are_returned_and_idle_workspaces_forgotten() -> None:
    async def scenario() -> tuple[bool, int, int, int]:
        admission = Admission(capacity=3, share=0.5, wait_seconds=0.05)
        for key in ("a", "b", "c", "a"):
            async with admission.slot(key):
                pass
        release = asyncio.Event()
        holder = asyncio.create_task(_hold(admission, "a", release))
        await asyncio.sleep(0)
        try:
            async with admission.slot("a"):
                pass
        except Overloaded:
            refused = True
        else:
            refused = False
        release.set()
        await holder
        stats = admission.stats
        return refused, stats.in_use, stats.waiting, len(admission._keys)

    assert asyncio.run(scenario()) == (True, 0, 0, 0)


def test_a_cancelled_waiter_gives_back_what_it_held() -> None:
    async def scenario() -> tuple[int, int]:
        admission = Admission(capacity=2, share=0.5, wait_seconds=5)
        release = asyncio.Event()
        holder = asyncio.create_task(_hold(admission, "a", release))
        await asyncio.sleep(0)
        waiter = asyncio.create_task(_hold(admission, "a", asyncio.Event()))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        release.set()
        await holder
        # Both slots of the pool are free again: two workspaces get in at once.
        async with admission.slot("x"), admission.slot("y"):
            in_use = admission.stats.in_use
        return in_use, admission.stats.waiting

    assert asyncio.run(scenario()) == (2, 0)


# (rate per second, burst, request times in seconds, which of them are refused)
RATE_CASES = [
    (1.0, 3, [0, 0, 0, 0], [3]),
    (1.0, 3, [0, 0, 0, 1], []),  # a second later one token is back
    (10.0, 2, [0, 0, 0, 0.05, 0.1], [2, 3]),
    (2.0, 1, [0, 0.5, 0.5, 1.0], [2]),
]


@pytest.mark.parametrize(("rate", "burst", "times", "refused"), RATE_CASES)
def test_the_token_bucket(rate: float, burst: int, times: list[float], refused: list[int]) -> None:
    limiter = RateLimiter(rate=rate, burst=burst)
    outcomes: list[int] = []
    waits: list[int] = []
    for n, at in enumerate(times):
        try:
            limiter.take("ws", now=1000.0 + at)
        except RateLimited as refusal:
            outcomes.append(n)
            waits.append(refusal.retry_after)
    assert outcomes == refused
    assert all(wait >= 1 for wait in waits)
    assert limiter.refused == len(refused)


def test_workspaces_have_buckets_of_their_own() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    limiter.take("a", now=0)
    limiter.take("b", now=0)
    with pytest.raises(RateLimited):
        limiter.take("a", now=0)


def test_refilled_buckets_are_forgotten_and_busy_ones_kept() -> None:
    limiter = RateLimiter(rate=1.0, burst=1)
    for n in range(SWEEP_AT_LEAST - 1):
        limiter.take(f"idle-{n}", now=0)
    limiter.take("busy", now=100)  # the table is full: idle buckets have long refilled
    assert set(limiter._buckets) == {"busy"}
    with pytest.raises(RateLimited):
        limiter.take("busy", now=100)


def test_a_table_of_busy_workspaces_is_not_swept_on_every_request() -> None:
    limiter = RateLimiter(rate=1.0, burst=10)
    for n in range(SWEEP_AT_LEAST):
        limiter.take(f"busy-{n}", now=0)
    # Every bucket is still busy, so the sweep kept them all and waits for the table to double.
    assert len(limiter._buckets) == SWEEP_AT_LEAST
    assert limiter._sweep_at == 2 * SWEEP_AT_LEAST
