"""E-mail through an ordered list of providers with a circuit breaker: a provider that fails or
times out is skipped for a cool-down and the next one is used; after the cool-down it is tried
again, and one success puts it back in front.

The breaker's state (``ProviderHealth``) outlives a delivery run: the worker keeps one for the
life of the process, so a dead primary costs one failed attempt per cool-down, not one per
message. The connections (``MailProviders``) belong to one run. Time is the run's clock, so a
test moves through a cool-down by passing ``now``.
"""

import logging
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from types import TracebackType

from helpdesk.core.settings import PostmarkProvider, SmtpProvider
from helpdesk.outbox.mail_api import PostmarkSender
from helpdesk.outbox.mailer import MailError, MailSender, SmtpSender

log = logging.getLogger("helpdesk.outbox")


class ProviderHealth:
    """Which providers are cooling down after a failure, and until when."""

    def __init__(self, cooldown: timedelta) -> None:
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._open_until: dict[str, datetime] = {}

    def available(self, name: str, now: datetime) -> bool:
        with self._lock:
            until = self._open_until.get(name)
        return until is None or now >= until

    def cooling_until(self, name: str) -> datetime | None:
        with self._lock:
            return self._open_until.get(name)

    def failed(self, name: str, now: datetime) -> None:
        with self._lock:
            self._open_until[name] = now + self.cooldown

    def succeeded(self, name: str) -> bool:
        """Close the breaker; True when it was open (the provider has recovered)."""
        with self._lock:
            return self._open_until.pop(name, None) is not None


def sender_for(config: SmtpProvider | PostmarkProvider) -> MailSender:
    if isinstance(config, SmtpProvider):
        return SmtpSender(config)
    return PostmarkSender(config)


class MailProviders:
    """The configured providers, connected for one delivery run, tried in order."""

    def __init__(
        self, senders: Sequence[MailSender], health: ProviderHealth, *, mail_from: str
    ) -> None:
        if not senders:
            raise ValueError("MailProviders needs at least one provider")
        self.senders = list(senders)
        self.health = health
        self.mail_from = mail_from

    @property
    def timeout_seconds(self) -> float:
        """The longest one message can take: every provider timing out in turn."""
        return sum(sender.timeout_seconds for sender in self.senders)

    def __enter__(self) -> "MailProviders":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sender in self.senders:
            sender.close()

    def send(self, message: EmailMessage, now: datetime) -> tuple[str, int]:
        """Send through the first available provider that takes it; return its name and
        success code. Raises MailError: ``permanent`` when a provider refused the recipient
        outright (no other is asked), otherwise with every provider's reason."""
        reasons = []
        code: int | None = None
        for sender in self.senders:
            name = sender.name
            if not self.health.available(name, now):
                until = self.health.cooling_until(name)
                reasons.append(f"{name}: skipped until {until:%H:%M:%S} after a failure")
                continue
            try:
                code = sender.send(message)
            except MailError as exc:
                if exc.permanent:
                    raise MailError(f"{name}: {exc.detail}", permanent=True, code=exc.code) from exc
                self.health.failed(name, now)
                log.warning(
                    "mail provider %s failed (%s); skipped for %s",
                    name,
                    exc.detail,
                    self.health.cooldown,
                )
                reasons.append(f"{name}: {exc.detail}")
                code = exc.code
                continue
            if self.health.succeeded(name):
                log.info("mail provider %s is sending again", name)
            return name, code
        raise MailError("; ".join(reasons), code=code)
