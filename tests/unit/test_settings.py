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


@pytest.mark.parametrize(
    ("keys", "refused"),
    [
        ({"k1": "s" * 31}, True),
        ({"k1": "s" * 32}, False),
        # Bytes, not characters: 16 two-byte characters are 32 bytes of key.
        ({"k1": "é" * 16}, False),
        # Every live key verifies tokens, so a short old key is as weak as a short active one.
        ({"k1": "s" * 40, "old": "tiny-key"}, True),
    ],
)
def test_production_refuses_signing_keys_shorter_than_32_bytes(
    keys: dict[str, str], refused: bool
) -> None:
    settings = Settings(
        env="production",
        database_url=DB,
        signing_keys={kid: SecretStr(key) for kid, key in keys.items()},
        signing_key_id="k1",
    )
    if not refused:
        settings.check_production()
        return
    with pytest.raises(ConfigurationError, match="at least 32 bytes") as refusal:
        settings.check_production()
    assert "\n" not in str(refusal.value)
    # It names the key, never shows it.
    assert not {key for key in keys.values() if key in str(refusal.value)}


def test_the_active_key_id_must_name_a_key() -> None:
    with pytest.raises(ValidationError, match="names no key"):
        Settings(signing_keys={"a": SecretStr("x" * 40)}, signing_key_id="b")


def test_signing_keys_never_show_in_repr() -> None:
    settings = Settings(signing_keys={"k1": SecretStr("super-secret-value")}, signing_key_id="k1")
    assert "super-secret-value" not in repr(settings)


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        ("", []),
        ("10.0.0.7", ["10.0.0.7"]),
        (" 10.0.0.7 , 192.168.0.0/16,", ["10.0.0.7", "192.168.0.0/16"]),
        # Host bits set: uvicorn would take it as a name and trust nobody; it is the network.
        ("10.1.2.3/8", ["10.0.0.0/8"]),
        ("::1, 2001:db8::/32", ["::1", "2001:db8::/32"]),
    ],
)
def test_trusted_proxies_are_addresses_and_networks_separated_by_commas(
    monkeypatch: pytest.MonkeyPatch, raw: str, parsed: list[str]
) -> None:
    monkeypatch.setenv("HELPDESK_TRUSTED_PROXIES", raw)
    assert Settings().trusted_proxies == parsed


def test_no_proxy_is_trusted_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HELPDESK_TRUSTED_PROXIES", raising=False)
    assert Settings().trusted_proxies == []


@pytest.mark.parametrize("raw", ["*", "proxy.internal", "10.0.0.300", "10.0.0.0/33"])
def test_a_trusted_proxy_that_is_not_an_address_is_refused(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("HELPDESK_TRUSTED_PROXIES", raw)
    with pytest.raises(ValidationError, match="not an IP address or network"):
        Settings()
