"""Runtime configuration, read from ``HELPDESK_*`` environment variables."""

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SIGNING_KEY = "development-only-signing-key-change-me"
# HS256 keys: RFC 7518 section 3.2 asks for at least the hash's size, 256 bits.
MIN_SIGNING_KEY_BYTES = 32


class ConfigurationError(RuntimeError):
    """The settings cannot run in the chosen environment; the message is one line for operators."""


ProviderName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class SmtpProvider(BaseModel):
    """An SMTP relay in HELPDESK_MAIL_PROVIDERS."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["smtp"]
    name: ProviderName
    host: str = Field(min_length=1)
    port: int = Field(default=587, ge=1, le=65535)
    # "starttls" refuses to send when the server does not offer STARTTLS: never silently in clear.
    tls: Literal["none", "starttls", "ssl"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    # Long enough for a slow relay to accept DATA, short enough that one dead relay does not
    # hold a whole batch (and its lease) for minutes.
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)


class PostmarkProvider(BaseModel):
    """An HTTP e-mail API in HELPDESK_MAIL_PROVIDERS: Postmark's `POST /email`, or any service
    that speaks it (``url``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["postmark"]
    name: ProviderName
    token: SecretStr
    url: str = "https://api.postmarkapp.com/email"
    message_stream: str = "outbound"
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)


MailProvider = Annotated[SmtpProvider | PostmarkProvider, Field(discriminator="type")]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HELPDESK_", env_file=None, extra="ignore")

    env: Literal["development", "production"] = "development"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("HELPDESK_DATABASE_URL", "DATABASE_URL")
    )
    # The owner role's URL: migrations, and nothing else. Unset: DATABASE_URL's role migrates
    # too (one role for everything, as before; README "Database roles" sets up two).
    owner_database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("HELPDESK_OWNER_DATABASE_URL", "DATABASE_OWNER_URL"),
    )
    data_dir: Path = Path(".helpdesk")
    pool_size: int = Field(default=10, ge=1)
    pool_max_overflow: int = Field(default=5, ge=0)
    # psycopg's server-side prepared statements collide behind PgBouncer in transaction mode.
    pgbouncer: bool = False
    # Admission control, per process: a request waits at most this long for a connection,
    # then answers 503 `overloaded` (never a 500, never a hang).
    pool_wait_seconds: float = Field(default=20.0, gt=0, le=120)
    # The share of the pool's connections (size + overflow) one workspace may hold at once:
    # its burst queues behind itself, and the rest of the pool stays for the others.
    workspace_pool_share: float = Field(default=0.5, gt=0, le=1)
    # Requests per second one workspace may make, per process, with bursts up to the bucket's
    # size; beyond that 429 `rate_limited` with Retry-After.
    workspace_rate_per_second: float = Field(default=200.0, gt=0)
    workspace_rate_burst: int = Field(default=400, ge=1)
    # Threads that hash and verify passwords (argon2 is CPU-bound; the event loop never waits
    # on it) and run the sign-in routes' own transactions.
    credential_workers: int = Field(default=4, ge=1, le=64)

    # SIGTERM lets in-flight requests finish for up to this long; what is still running is then
    # cancelled, so a stop never waits on a stuck request. The orchestrator must wait longer
    # before it kills (Kubernetes' terminationGracePeriodSeconds is 30; `docker stop` waits 10
    # unless given `--time`).
    shutdown_grace_seconds: int = Field(default=20, ge=0, le=3600)

    # Peers whose X-Forwarded-For is believed (addresses or CIDR networks, comma-separated):
    # the load balancer in front of the service, and nobody else. None by default, so the
    # address a client writes in the header never reaches the audit trail or the throttle.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    jwt_issuer: str = "helpdesk"
    jwt_audience: str = "helpdesk-api"
    # Several keys may be live at once so a rotation does not log everybody out: tokens are
    # signed with ``signing_key_id`` and verified with whichever key their ``kid`` names.
    signing_keys: dict[str, SecretStr] = Field(
        default_factory=lambda: {"dev": SecretStr(DEFAULT_SIGNING_KEY)}
    )
    signing_key_id: str = "dev"
    access_token_minutes: int = Field(default=15, ge=1)
    refresh_token_days: int = Field(default=30, ge=1)

    password_hash_profile: Literal["strong", "fast"] = "strong"

    login_attempts_per_account: int = Field(default=5, ge=1)
    login_attempts_per_address: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=300, ge=1)

    # Outgoing e-mail. With no host, e-mails wait in the outbox until one is configured, rather
    # than failing their attempts against a server that was never there.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # "starttls" refuses to send when the server does not offer STARTTLS: never silently in clear.
    smtp_tls: Literal["none", "starttls", "ssl"] = "starttls"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    mail_from: str = "Helpdesk <helpdesk@localhost>"
    # E-mail providers in the order they are tried (a JSON list; see SmtpProvider and
    # PostmarkProvider). One that fails or times out is skipped for the cool-down and the next
    # is used. Empty: the HELPDESK_SMTP_* relay above, if any, is the only one.
    mail_providers: list[MailProvider] = Field(default_factory=list)
    mail_provider_cooldown_seconds: float = Field(default=60.0, ge=0, le=86_400)

    # The in-process worker (`helpdesk serve` and the ASGI factory run it unless this is false,
    # which `serve --no-worker` sets; `helpdesk worker` runs it alone). Each job runs every so
    # many seconds in each process that runs the worker; advisory locks keep two processes out
    # of one workspace at once, so more processes mean more frequent passes, never double work.
    worker: bool = True
    escalate_every_seconds: float = Field(default=60.0, gt=0, le=86_400)
    auto_close_every_seconds: float = Field(default=60.0, gt=0, le=86_400)
    deliver_every_seconds: float = Field(default=5.0, gt=0, le=86_400)
    retention_every_seconds: float = Field(default=86_400.0, gt=0, le=7 * 86_400)
    # The schema pool (tenants/pool.py): workspace schemas the worker builds ahead of time, so
    # provisioning renames one instead of building it. 0 turns the filling off (provisioning
    # then builds every schema, and takes any left in the pool first).
    schema_pool_size: int = Field(default=5, ge=0, le=1000)
    schema_pool_every_seconds: float = Field(default=10.0, gt=0, le=86_400)

    # Webhook and e-mail delivery: a failed attempt is retried after
    # delivery_backoff_seconds * 2^(attempts - 1), capped, until delivery_max_attempts.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    delivery_backoff_seconds: float = Field(default=30.0, ge=0)
    # Webhooks to loopback, private, link-local or other non-public addresses are refused (SSRF);
    # a development setup posting to a receiver on this machine may allow them.
    webhook_allow_private_addresses: bool = False

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [entry.strip() for entry in value.split(",") if entry.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_addresses(cls, entries: list[str]) -> list[str]:
        # Written out in canonical form: uvicorn silently takes anything it cannot parse (or a
        # network with host bits set) as a literal name, which would trust nobody unnoticed.
        canonical = []
        for entry in entries:
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"HELPDESK_TRUSTED_PROXIES: {entry!r} is not an IP address or network"
                ) from None
            single = network.num_addresses == 1 and "/" not in entry
            canonical.append(str(network.network_address if single else network))
        return canonical

    @field_validator("mail_providers")
    @classmethod
    def _distinct_provider_names(cls, providers: list[MailProvider]) -> list[MailProvider]:
        # A delivery records its provider by name: two of one name could not be told apart.
        names = [provider.name for provider in providers]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"HELPDESK_MAIL_PROVIDERS: names used twice: {', '.join(twice)}")
        return providers

    @property
    def mail_provider_list(self) -> list[SmtpProvider | PostmarkProvider]:
        """The providers to try, in order: HELPDESK_MAIL_PROVIDERS, else a relay named "smtp"
        from the single-relay settings, else none (e-mails wait in the outbox)."""
        if self.mail_providers:
            return list(self.mail_providers)
        if self.smtp_host:
            return [
                SmtpProvider(
                    type="smtp",
                    name="smtp",
                    host=self.smtp_host,
                    port=self.smtp_port,
                    tls=self.smtp_tls,
                    username=self.smtp_username,
                    password=self.smtp_password,
                )
            ]
        return []

    @model_validator(mode="after")
    def _signing_key_exists(self) -> "Settings":
        if self.signing_key_id not in self.signing_keys:
            raise ValueError(
                f"HELPDESK_SIGNING_KEY_ID {self.signing_key_id!r} names no key in "
                "HELPDESK_SIGNING_KEYS"
            )
        return self

    @property
    def signing_key(self) -> str:
        return self.signing_keys[self.signing_key_id].get_secret_value()

    def check_production(self) -> None:
        """Refuse to run production with an embedded database or a well-known or short key."""
        if self.env != "production":
            return
        if not self.database_url:
            raise ConfigurationError("production needs DATABASE_URL (or HELPDESK_DATABASE_URL)")
        if any(k.get_secret_value() == DEFAULT_SIGNING_KEY for k in self.signing_keys.values()):
            raise ConfigurationError(
                "production needs HELPDESK_SIGNING_KEYS set to your own secret, not the default"
            )
        # Every live key verifies tokens, so a short retired key is as guessable as an active one.
        short = sorted(
            kid
            for kid, key in self.signing_keys.items()
            if len(key.get_secret_value().encode()) < MIN_SIGNING_KEY_BYTES
        )
        if short:
            raise ConfigurationError(
                f"production needs signing keys of at least {MIN_SIGNING_KEY_BYTES} bytes; "
                f"too short in HELPDESK_SIGNING_KEYS: {', '.join(short)}"
            )


@lru_cache
def get_settings() -> Settings:
    return Settings()
