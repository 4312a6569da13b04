"""Access tokens: the claims they must carry, the algorithms accepted, and key rotation by kid."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from pydantic import SecretStr

from auth.tokens import REQUIRED_CLAIMS, decode_access_token, issue_access_token
from helpdesk.core.errors import Unauthorized
from helpdesk.core.settings import Settings

pytestmark = pytest.mark.unit

OLD_KEY, NEW_KEY = "o" * 64, "n" * 64
USER, TENANT = uuid.uuid4(), uuid.uuid4()


def _settings(active: str, **keys: str) -> Settings:
    return Settings(
        signing_keys={kid: SecretStr(key) for kid, key in keys.items()}, signing_key_id=active
    )


def _claims(settings: Settings, **override: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(USER),
        "tid": str(TENANT),
        "iat": now,
        "exp": now + timedelta(minutes=5),
        "jti": uuid.uuid4().hex,
    }
    claims.update(override)
    return claims


def test_an_issued_token_carries_every_required_claim_and_the_active_kid() -> None:
    settings = _settings("new", old=OLD_KEY, new=NEW_KEY)
    token, lifetime = issue_access_token(settings, USER, TENANT)
    assert jwt.get_unverified_header(token)["kid"] == "new"
    payload = jwt.decode(token, NEW_KEY, algorithms=["HS256"], audience=settings.jwt_audience)
    assert set(REQUIRED_CLAIMS) <= set(payload)
    assert set(REQUIRED_CLAIMS) == {"iss", "aud", "sub", "tid", "iat", "exp", "jti"}
    assert lifetime == 15 * 60 == payload["exp"] - payload["iat"]
    claims = decode_access_token(settings, token)
    assert (claims.user_id, claims.tenant_id) == (USER, TENANT)


def test_rotation_keeps_tokens_of_a_retired_key_valid_while_it_is_listed() -> None:
    before = _settings("old", old=OLD_KEY)
    token, _ = issue_access_token(before, USER, TENANT)
    rotated = _settings("new", old=OLD_KEY, new=NEW_KEY)
    assert decode_access_token(rotated, token).user_id == USER
    new_token, _ = issue_access_token(rotated, USER, TENANT)
    assert jwt.get_unverified_header(new_token)["kid"] == "new"
    # Once the old key is dropped from the list, its tokens stop working.
    retired = _settings("new", new=NEW_KEY)
    assert decode_access_token(retired, new_token).user_id == USER
    with pytest.raises(Unauthorized, match="unknown key"):
        decode_access_token(retired, token)


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
def test_a_token_missing_a_required_claim_is_refused(claim: str) -> None:
    settings = _settings("k", k=NEW_KEY)
    claims = _claims(settings)
    del claims[claim]
    token = jwt.encode(claims, NEW_KEY, algorithm="HS256", headers={"kid": "k"})
    with pytest.raises(Unauthorized, match="invalid"):
        decode_access_token(settings, token)


@pytest.mark.parametrize(
    "forge",
    [
        # With the right kid, so that the refusal comes from the algorithm list, not the key.
        lambda claims: jwt.encode(claims, None, algorithm="none", headers={"kid": "k"}),
        lambda claims: jwt.encode(claims, NEW_KEY, algorithm="HS512", headers={"kid": "k"}),
        lambda claims: jwt.encode(claims, OLD_KEY, algorithm="HS256", headers={"kid": "k"}),
    ],
    ids=["alg-none", "unlisted-hs512", "wrong-key"],
)
def test_a_token_not_signed_by_hs256_with_the_named_key_is_refused(forge: Any) -> None:
    settings = _settings("k", k=NEW_KEY)
    with pytest.raises(Unauthorized, match="invalid"):
        decode_access_token(settings, forge(_claims(settings)))
