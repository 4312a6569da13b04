"""Sign-in throttling per account (a workspace and an e-mail) and per client address, counted in
PostgreSQL so every server process shares the counts.

An attempt is counted *before* its password is checked, under a row lock on its counters: the
decision and the count are one step, so parallel guesses queue on the lock instead of all
reading the same count and all being evaluated. A success gives the count back. Past the free
allowance each further attempt waits for a delay that doubles from 1 s up to a 30 s cap, after
the last attempt; nothing locks the owner out for longer than that.
"""

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, bindparam, text
from sqlalchemy.orm import Session

from helpdesk.core.errors import RateLimited
from helpdesk.core.settings import Settings

FIRST_DELAY_SECONDS = 1
MAX_DELAY_SECONDS = 30
# The operator's account names no workspace; a slug never contains "/".
PLATFORM = "/platform"

_ENSURE = text(
    "INSERT INTO public.login_throttle (key) SELECT unnest(CAST(:keys AS text[]))"
    " ON CONFLICT (key) DO NOTHING"
)
# Ordered by key: two sign-ins lock their rows in the same order and cannot deadlock.
_LOCK = text(
    "SELECT key, attempts, last_attempt_at FROM public.login_throttle"
    " WHERE key IN :keys ORDER BY key FOR UPDATE"
).bindparams(bindparam("keys", expanding=True))
# An upsert: the daily sweep may have deleted a stale row between _ENSURE and _LOCK.
_COUNT = text(
    "INSERT INTO public.login_throttle (key, attempts, last_attempt_at)"
    " VALUES (:key, :attempts, :at)"
    " ON CONFLICT (key) DO UPDATE SET attempts = :attempts, last_attempt_at = :at"
)
_GIVE_BACK = text(
    "UPDATE public.login_throttle SET attempts = greatest(attempts - 1, 0) WHERE key = :key"
)
_CLEAR = text("UPDATE public.login_throttle SET attempts = 0 WHERE key = :key")
_FORGET = text("DELETE FROM public.login_throttle WHERE last_attempt_at < :cutoff")


def retry_delay(attempts: int, allowance: int) -> int:
    """Seconds the next attempt waits after the last of ``attempts`` counted ones."""
    if attempts < allowance:
        return 0
    # min() before the power: a long siege must not build a huge integer.
    doublings = min(attempts - allowance, math.ceil(math.log2(MAX_DELAY_SECONDS)))
    return min(FIRST_DELAY_SECONDS << doublings, MAX_DELAY_SECONDS)


def seconds_to_wait(
    attempts: int,
    last_attempt_at: datetime | None,
    now: datetime,
    *,
    allowance: int,
    window: timedelta,
) -> int:
    """Whole seconds until the next attempt may be made (0: now); attempts whose last one is
    older than ``window`` are forgotten."""
    if last_attempt_at is None or now - last_attempt_at > window:
        return 0
    # A clock that went back counts as no time passed, never as a longer wait.
    elapsed = max(now - last_attempt_at, timedelta(0))
    remaining = timedelta(seconds=retry_delay(attempts, allowance)) - elapsed
    return max(0, math.ceil(remaining.total_seconds()))


@dataclass(frozen=True, slots=True)
class Attempt:
    """The counters one sign-in attempt was counted on."""

    account: str
    address: str


def account_key(email: str, workspace: str | None) -> str:
    return f"account:{workspace or PLATFORM}:{email.lower()}"


def address_key(address: str) -> str:
    return f"address:{address}"


def count_attempt(
    session: Session, settings: Settings, *, email: str, workspace: str | None, address: str
) -> Attempt:
    """Count a sign-in attempt against its account and address, or raise ``RateLimited`` (and
    count nothing) while either waits out its delay. Commit before checking the password: the
    row lock is what keeps parallel attempts from all being let through."""
    attempt = Attempt(account_key(email, workspace), address_key(address))
    allowances = {
        attempt.account: settings.login_attempts_per_account,
        attempt.address: settings.login_attempts_per_address,
    }
    window = timedelta(seconds=settings.login_window_seconds)
    keys = sorted(allowances)
    session.execute(_ENSURE, {"keys": keys})
    rows = session.execute(_LOCK, {"keys": keys}).all()
    now = datetime.now(UTC)
    wait = 0
    counted: dict[str, int] = {}
    for key, attempts, last_attempt_at in rows:
        fresh = last_attempt_at is not None and now - last_attempt_at <= window
        counted[key] = attempts if fresh else 0
        wait = max(
            wait,
            seconds_to_wait(
                attempts, last_attempt_at, now, allowance=allowances[key], window=window
            ),
        )
    if wait:
        raise RateLimited(
            "Too many failed sign-in attempts; wait before trying again.", retry_after=wait
        )
    for key in keys:
        session.execute(_COUNT, {"key": key, "attempts": counted.get(key, 0) + 1, "at": now})
    return attempt


def attempt_succeeded(session: Session, attempt: Attempt) -> None:
    """A right password: the account starts afresh, and the address gets its attempt back (one
    office behind one address signs in all day)."""
    session.execute(_CLEAR, {"key": attempt.account})
    session.execute(_GIVE_BACK, {"key": attempt.address})


def forget_stale(session: Session, settings: Settings, now: datetime) -> int:
    """Delete the counters whose last attempt is older than the window, which
    ``seconds_to_wait`` ignores anyway: one row per address or account ever tried would
    otherwise pile up for good. Returns how many went."""
    cutoff = now - timedelta(seconds=settings.login_window_seconds)
    return int(cast(CursorResult[Any], session.execute(_FORGET, {"cutoff": cutoff})).rowcount)
