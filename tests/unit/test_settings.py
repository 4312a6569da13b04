"""Production refuses unsafe settings with a one-line reason."""

import pytest
from pydantic import SecretStr, ValidationError

from helpdesk.core.settings import ConfigurationError, Settings

pytestmark = pytest.mark.unit

DB = "postgresql://app@db.example/helpdesk"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({}, "DATABASE_URL"),
        ({"database_url": DB}, "HELPDESK_SIGNING_KEYS"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, str], reason: str) -> None:
    settings = Settings(env="production", **overrides)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=reason):
        settings.check_production()


def test_production_starts_with_a_url_and_its_own_key() -> None:
    settings = Settings(
        env="production",
        database_url=DB,
        signing_keys={"k1": SecretStr("s" * 40)},
        signing_key_id="k1",
    )
    settings.check_production()
    assert settings.signing_key == "s" * 40


def test_the_active_key_id_must_name_a_key() -> None:
    with pytest.raises(ValidationError, match="names no key"):
        Settings(signing_keys={"a": SecretStr("x" * 40)}, signing_key_id="b")


def test_signing_keys_never_show_in_repr() -> None:
    settings = Settings(signing_keys={"k1": SecretStr("super-secret-value")}, signing_key_id="k1")
    assert "super-secret-value" not in repr(settings)
