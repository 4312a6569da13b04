"""The request path's cache of verified access tokens: it saves the signature check, never the
expiry, and stays bounded. (That a cached token's ended session is still refused is
tests/e2e/test_sessions.py's: the session is read from the database on every request.)"""

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from auth import verified_tokens
from auth.tokens import AccessClaims, decode_access_token, issue_access_token
from auth.verified_tokens import VerifiedTokens
from helpdesk.core.errors import Unauthorized
from helpdesk.core.settings import Settings

pytestmark = pytest.mark.unit

USER, TENANT, SESSION = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tokens actually verified (signature and claims), in order."""
    seen: list[str] = []

    def counting(settings: Settings, token: str) -> AccessClaims:
        seen.append(token)
        return decode_access_token(settings, token)

    monkeypatch.setattr(verified_tokens, "decode_access_token", counting)
    return seen


def test_a_token_is_verified_once_then_answered_from_the_cache(decodes: list[str]) -> None:
    settings = Settings()
    token, _ = issue_access_token(settings, USER, TENANT, SESSION)
    tokens = VerifiedTokens(settings)
    first, second = tokens.claims(token), tokens.claims(token)
    assert first == second
    assert (first.user_id, first.tenant_id, first.session_id) == (USER, TENANT, SESSION)
    assert decodes == [token]


def test_a_cached_token_is_refused_once_it_expires(decodes: list[str]) -> None:
    settings = Settings()
    with time_machine.travel(datetime.now(UTC), tick=False) as clock:
        token, lifetime = issue_access_token(settings, USER, TENANT, SESSION)
        tokens = VerifiedTokens(settings)
        tokens.claims(token)
        clock.shift(timedelta(seconds=lifetime))
        with pytest.raises(Unauthorized, match="expired"):
            tokens.claims(token)
    assert decodes == [token, token]


def test_a_refused_token_is_not_kept(decodes: list[str]) -> None:
    settings = Settings()
    token, _ = issue_access_token(settings, USER, TENANT, SESSION)
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    tokens = VerifiedTokens(settings)
    for _ in range(2):
        with pytest.raises(Unauthorized):
            tokens.claims(forged)
    assert decodes == [forged, forged]


def test_the_cache_holds_at_most_its_capacity_dropping_the_oldest(decodes: list[str]) -> None:
    settings = Settings()
    first, second, third = (issue_access_token(settings, USER, TENANT)[0] for _ in range(3))
    tokens = VerifiedTokens(settings, capacity=2)
    for token in (first, second, third, third, first):
        tokens.claims(token)
    # third was kept; first had been dropped for it and was verified again.
    assert decodes == [first, second, third, first]
