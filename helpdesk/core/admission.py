"""Admission control for the request path: who may hold one of the pool's connections.

A request takes a slot of its workspace (at most a share of the pool) and then a slot of the
pool, both within one wait bound; past the bound it is refused with 503 ``overloaded`` rather
than left to wait on the pool until a 500. One workspace's burst therefore queues on its own
slots, behind itself, while the rest of the pool keeps serving the other workspaces.

The slots are ``asyncio`` primitives of one event loop: limits are per process.
"""

import asyncio
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from helpdesk.core.errors import Overloaded, RateLimited

# What a client should wait before trying again once refused for want of a connection: short,
# since a slot frees as soon as one request commits.
OVERLOADED_RETRY_AFTER_SECONDS = 1


@dataclass(slots=True)
class _KeySlots:
    semaphore: asyncio.Semaphore
    users: int = 0


@dataclass(slots=True)
class AdmissionStats:
    admitted: int = 0
    rejected: int = 0
    waiting: int = 0
    in_use: int = 0


class Admission:
    """Bounded, per-key-fair access to ``capacity`` connections."""

    def __init__(self, capacity: int, share: float, wait_seconds: float) -> None:
        self.capacity = capacity
        self.per_key = max(1, min(capacity, math.floor(capacity * share)))
        self.wait_seconds = wait_seconds
        self.stats = AdmissionStats()
        self._pool = asyncio.Semaphore(capacity)
        self._keys: dict[str, _KeySlots] = {}

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        """Hold one connection's worth of capacity for ``key`` (a workspace id) until the block
        ends; raise :class:`Overloaded` if none comes free within the wait bound."""
        slots = self._keys.get(key)
        if slots is None:
            slots = self._keys[key] = _KeySlots(asyncio.Semaphore(self.per_key))
        slots.users += 1
        self.stats.waiting += 1
        try:
            await self._acquire_both(slots.semaphore)
        except BaseException:
            self.stats.waiting -= 1
            self._leave(key, slots)
            raise
        self.stats.waiting -= 1
        self.stats.admitted += 1
        self.stats.in_use += 1
        try:
            yield
        finally:
            self.stats.in_use -= 1
            self._pool.release()
            slots.semaphore.release()
            self._leave(key, slots)

    async def _acquire_both(self, own: asyncio.Semaphore) -> None:
        try:
            async with asyncio.timeout(self.wait_seconds):
                await own.acquire()
                try:
                    await self._pool.acquire()
                except BaseException:
                    own.release()
                    raise
        except TimeoutError:
            self.stats.rejected += 1
            raise Overloaded(
                "The service is busy: no database connection came free in time. "
                f"Retry after {OVERLOADED_RETRY_AFTER_SECONDS} s.",
                retry_after=OVERLOADED_RETRY_AFTER_SECONDS,
            ) from None

    def _leave(self, key: str, slots: _KeySlots) -> None:
        # Forget a workspace nobody is using, so thousands of workspaces cost nothing at rest.
        slots.users -= 1
        if slots.users == 0:
            self._keys.pop(key, None)


SWEEP_AT_LEAST = 4096


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    """A token bucket per key: ``rate`` requests per second, bursts up to ``burst``."""

    rate: float
    burst: int
    refused: int = 0
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    # The table is swept when it grows past this, which then doubles past what the sweep kept:
    # a sweep is a pass over every bucket, so it must not run on every request.
    _sweep_at: int = SWEEP_AT_LEAST

    def take(self, key: str, now: float | None = None) -> None:
        """Spend one token of ``key``'s bucket or raise :class:`RateLimited`."""
        now = time.monotonic() if now is None else now
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self.burst), updated=now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            self._forget_full(now)
            return
        self.refused += 1
        wait = math.ceil((1 - bucket.tokens) / self.rate)
        raise RateLimited(
            f"This workspace is sending requests faster than its limit; retry after {wait} s.",
            retry_after=max(1, wait),
        )

    def _forget_full(self, now: float) -> None:
        # A bucket that has refilled says nothing a fresh one would not: drop them once the
        # table grows, so it stays as small as the set of recently busy workspaces.
        if len(self._buckets) < self._sweep_at:
            return
        full_after = self.burst / self.rate
        self._buckets = {key: b for key, b in self._buckets.items() if now - b.updated < full_after}
        self._sweep_at = max(SWEEP_AT_LEAST, 2 * len(self._buckets))
