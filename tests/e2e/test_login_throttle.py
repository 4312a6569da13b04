"""Sign-in throttling against a served app: parallel guesses cannot overrun the allowance, the
delay grows from 1 s to a 30 s cap, the owner gets in once Retry-After has passed, and every
refusal is on the platform trail."""

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from audit.models import PlatformAuditEvent
from auth.throttle import MAX_DELAY_SECONDS
from helpdesk.core.db import transaction
from helpdesk.runtime import Runtime
from tests.support.factories import PASSWORD, Factory, Workspace
from tests.support.live_server import LiveServer, served_for_sign_in

pytestmark = pytest.mark.e2e

LOGIN = "/api/v1/auth/login"
GUESSES = 12


@pytest.fixture
def served(runtime: Runtime, database_url: str) -> Iterator[LiveServer]:
    with served_for_sign_in(runtime.settings, database_url) as server:
        yield server


@pytest.fixture
def frozen() -> Iterator[time_machine.Traveller]:
    # Python's clock only (asyncio runs on time.monotonic, which time-machine leaves alone):
    # the throttle reads the wall clock, so a delay passes exactly when the test says so.
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


def _login(base_url: str, email: str, password: str, tenant: str) -> httpx.Response:
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return http.post(LOGIN, json={"email": email, "password": password, "tenant": tenant})


def _refusals(runtime: Runtime, email: str) -> list[Any]:
    with transaction(runtime.sessions) as session:
        return list(
            session.scalars(
                select(PlatformAuditEvent.details).where(
                    PlatformAuditEvent.actor_email == email,
                    PlatformAuditEvent.action == "auth.login_failed",
                )
            )
        )


def test_parallel_wrong_passwords_are_evaluated_at_most_five_times(
    served: LiveServer, factory: Factory, runtime: Runtime, frozen: time_machine.Traveller
) -> None:
    ws = factory.workspace()
    allowance = runtime.settings.login_attempts_per_account

    def guess(_: int) -> httpx.Response:
        return _login(served.base_url, ws.admin.email, "wrong-password", ws.slug)

    with ThreadPoolExecutor(GUESSES) as pool:
        answers = list(pool.map(guess, range(GUESSES)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [401] * allowance + [429] * (GUESSES - allowance), statuses
    for answer in answers:
        if answer.status_code == 429:
            assert answer.json()["code"] == "rate_limited"
            assert answer.headers["Retry-After"] == "1"
        else:
            assert "incorrect" in answer.json()["detail"]
    reasons = sorted(details["reason"] for details in _refusals(runtime, ws.admin.email))
    assert reasons == ["login_failed"] * allowance + ["rate_limited"] * (GUESSES - allowance)
    # The owner is not locked out: once Retry-After has passed, the right password works.
    refused = _login(served.base_url, ws.admin.email, PASSWORD, ws.slug)
    assert refused.status_code == 429
    frozen.shift(int(refused.headers["Retry-After"]))
    assert _login(served.base_url, ws.admin.email, PASSWORD, ws.slug).status_code == 200


def test_the_delay_doubles_from_one_second_to_the_cap(
    served: LiveServer, factory: Factory, runtime: Runtime, frozen: time_machine.Traveller
) -> None:
    ws = factory.workspace()
    allowance = runtime.settings.login_attempts_per_account
    for _ in range(allowance):
        assert _login(served.base_url, ws.admin.email, "nope-nope", ws.slug).status_code == 401
    waits = []
    for _ in range(8):
        refused = _login(served.base_url, ws.admin.email, "nope-nope", ws.slug)
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        # One second short of the wait is still refused, and refused with the rest of the wait.
        if wait > 1:
            frozen.shift(wait - 1)
            early = _login(served.base_url, ws.admin.email, "nope-nope", ws.slug)
            assert (early.status_code, early.headers["Retry-After"]) == (429, "1")
            frozen.shift(1)
        else:
            frozen.shift(wait)
        assert _login(served.base_url, ws.admin.email, "nope-nope", ws.slug).status_code == 401
    assert waits == [1, 2, 4, 8, 16, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS, MAX_DELAY_SECONDS]
    refused = _login(served.base_url, ws.admin.email, PASSWORD, ws.slug)
    assert refused.status_code == 429
    frozen.shift(int(refused.headers["Retry-After"]))
    assert _login(served.base_url, ws.admin.email, PASSWORD, ws.slug).status_code == 200
    # A success starts the allowance afresh.
    for _ in range(allowance):
        assert _login(served.base_url, ws.admin.email, "nope-nope", ws.slug).status_code == 401


def test_guesses_in_one_workspace_do_not_slow_the_same_address_in_another(
    served: LiveServer, factory: Factory, runtime: Runtime, frozen: time_machine.Traveller
) -> None:
    first = factory.workspace()
    second: Workspace = factory.workspace()
    member = factory.member(first, "agent")
    factory.member(second, "agent", email=member.email)
    for _ in range(runtime.settings.login_attempts_per_account):
        assert _login(served.base_url, member.email, "nope-nope", first.slug).status_code == 401
    assert _login(served.base_url, member.email, PASSWORD, first.slug).status_code == 429
    assert _login(served.base_url, member.email, PASSWORD, second.slug).status_code == 200


def test_an_unknown_email_is_throttled_like_a_known_one(
    served: LiveServer, factory: Factory, runtime: Runtime, frozen: time_machine.Traveller
) -> None:
    ws = factory.workspace()
    ghost = f"ghost-{uuid.uuid4().hex[:8]}@example.com"
    answers = [
        _login(served.base_url, ghost, "nope-nope", ws.slug).status_code
        for _ in range(runtime.settings.login_attempts_per_account + 1)
    ]
    assert answers[-1] == 429
