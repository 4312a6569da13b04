"""The e-mail providers' rules: the circuit breaker's cool-down, and how the settings name the
providers (HELPDESK_MAIL_PROVIDERS, or the single-relay settings as a one-provider list)."""

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr, ValidationError

from helpdesk.core.settings import PostmarkProvider, Settings, SmtpProvider
from helpdesk.outbox.mail_providers import ProviderHealth

pytestmark = pytest.mark.unit

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(seconds=60)


@pytest.mark.parametrize(
    ("events", "asked_at", "available"),
    [
        # (what happened to "a", at which offset in seconds), when asked, the answer.
        ([], 0, True),
        ([("failed", 0)], 0, False),
        ([("failed", 0)], 59, False),
        ([("failed", 0)], 60, True),  # the cool-down is over: tried again
        ([("failed", 0), ("failed", 60)], 100, False),  # failed again: a new cool-down
        ([("failed", 0), ("succeeded", 60)], 61, True),
    ],
)
def test_a_failed_provider_is_skipped_for_the_cool_down(
    events: list[tuple[str, int]], asked_at: int, available: bool
) -> None:
    health = ProviderHealth(COOLDOWN)
    for event, at in events:
        if event == "failed":
            health.failed("a", T0 + timedelta(seconds=at))
        else:
            health.succeeded("a")
    assert health.available("a", T0 + timedelta(seconds=asked_at)) is available
    assert health.available("b", T0 + timedelta(seconds=asked_at)) is True


def test_a_success_says_whether_the_provider_recovered() -> None:
    health = ProviderHealth(COOLDOWN)
    assert health.succeeded("a") is False
    health.failed("a", T0)
    assert health.succeeded("a") is True


def test_the_providers_are_read_from_a_json_list_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "HELPDESK_MAIL_PROVIDERS",
        '[{"type": "postmark", "name": "api", "token": "pm-secret"},'
        ' {"type": "smtp", "name": "relay", "host": "smtp.example.com", "port": 465,'
        ' "tls": "ssl", "username": "helpdesk", "password": "relay-secret"}]',
    )
    monkeypatch.setenv("HELPDESK_SMTP_HOST", "ignored.example.com")
    api, relay = Settings().mail_provider_list
    assert isinstance(api, PostmarkProvider)
    assert (api.name, api.url, api.token.get_secret_value()) == (
        "api",
        "https://api.postmarkapp.com/email",
        "pm-secret",
    )
    assert isinstance(relay, SmtpProvider)
    assert (relay.name, relay.host, relay.port, relay.tls) == (
        "relay",
        "smtp.example.com",
        465,
        "ssl",
    )
    assert "relay-secret" not in repr(relay)
    assert "pm-secret" not in repr(api)


def test_the_single_relay_settings_are_a_one_provider_list() -> None:
    settings = Settings(
        smtp_host="smtp.example.com",
        smtp_port=2525,
        smtp_tls="none",
        smtp_username="helpdesk",
        smtp_password=SecretStr("relay-secret"),
    )
    assert settings.mail_provider_list == [
        SmtpProvider(
            type="smtp",
            name="smtp",
            host="smtp.example.com",
            port=2525,
            tls="none",
            username="helpdesk",
            password=SecretStr("relay-secret"),
        )
    ]
    assert Settings().mail_provider_list == []


@pytest.mark.parametrize(
    ("providers", "problem"),
    [
        (
            '[{"type": "smtp", "name": "a", "host": "x"},'
            ' {"type": "smtp", "name": "a", "host": "y"}]',
            "names used twice: a",
        ),
        ('[{"type": "carrier-pigeon", "name": "a"}]', "carrier-pigeon"),
        ('[{"type": "smtp", "name": "a"}]', "host"),
        ('[{"type": "postmark", "name": "a"}]', "token"),
        ('[{"type": "smtp", "name": "a b", "host": "x"}]', "name"),
    ],
)
def test_a_provider_list_that_cannot_work_is_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, providers: str, problem: str
) -> None:
    monkeypatch.setenv("HELPDESK_MAIL_PROVIDERS", providers)
    with pytest.raises(ValidationError, match=problem):
        Settings()
