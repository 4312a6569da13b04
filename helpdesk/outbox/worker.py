"""The delivery worker: sends due outbox messages (webhooks over HTTP; e-mails through the
configured providers in order, SMTP relays or an HTTP e-mail API, see ``mail_providers``).

Delivery is a job of the one per-workspace runner (``tenants.jobs``): each active workspace in
turn, under its own schema and role and its delivery lock, so a second worker skips a workspace
another is delivering. Each batch goes in three steps:

1. claim: in a short transaction, lock due rows with ``FOR UPDATE SKIP LOCKED`` (a row some
   request holds is not waited for) and push their ``next_attempt_at`` past the time the batch
   can take, a lease that keeps every later claim off them once the row lock is released;
2. send, outside the claim's transaction, so no row lock is held across network I/O (the one
   connection held meanwhile is the runner's, idle in the transaction that holds the workspace's
   delivery lock: no row lock, no snapshot, so it holds back neither writers nor vacuum);
3. record: in another transaction, one ``DeliveryAttempt`` per send and the message's new state.

Delivery is at least once: a worker that dies between sending and recording leaves its rows to be
sent again when the lease runs out. Receivers deduplicate on ``X-Webhook-Delivery``.
"""

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import partial
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.core.settings import Settings
from helpdesk.outbox.mail_providers import MailProviders, ProviderHealth, sender_for
from helpdesk.outbox.mailer import MailError, compose
from helpdesk.outbox.models import DeliveryAttempt, OutboxMessage
from helpdesk.runtime import Runtime
from helpdesk.webhooks.addresses import resolved_address_problem
from helpdesk.webhooks.models import Webhook
from tenants.jobs import Job, JobReport, WorkspaceRun, run_each_workspace
from tenants.locks import LockKey

log = logging.getLogger("helpdesk.outbox")

DELIVERY_JOB = "deliver-webhooks"  # the command's name; it sends e-mails too
BATCH_SIZE = 20
# Per workspace and pass, so one workspace's backlog cannot starve the others; the rest waits
# for the next pass.
MAX_BATCHES = 10
MAX_BACKOFF = timedelta(hours=1)
LEASE_MARGIN = timedelta(seconds=60)
MAX_ERROR_CHARS = 1000
USER_AGENT = "Helpdesk-Webhooks/1"

Clock = Callable[[], datetime]


class Outcome(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True, slots=True)
class Claimed:
    """What a send needs, copied out of the claim transaction: no ORM object outlives it."""

    id: int
    kind: str
    event: str
    recipient: str | None
    payload: dict[str, Any]
    created_at: datetime
    webhook_url: str | None
    webhook_secret: str | None


@dataclass(frozen=True, slots=True)
class Result:
    outbox_id: int
    outcome: Outcome
    attempted_at: datetime
    status_code: int | None = None
    error: str | None = None
    provider: str | None = None  # the e-mail provider that took the message


@dataclass(slots=True)
class DeliveryReport:
    """What one workspace's delivery, or a whole pass, did; ``retrying`` counts messages that
    will be tried again later, ``errors`` the workspaces that failed."""

    tenants: int = 0
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)
    # Messages still waiting after the run (neither delivered nor given up), by kind: e-mails
    # with no provider configured included.
    backlog: dict[str, int] = field(default_factory=dict)

    def count(self, outcome: Outcome, *, gave_up: bool) -> None:
        if outcome == Outcome.DELIVERED:
            self.delivered += 1
        elif gave_up:
            self.failed += 1
        else:
            self.retrying += 1

    @classmethod
    def total(cls, run: JobReport["DeliveryReport"]) -> "DeliveryReport":
        """A whole pass: the workspaces delivered in and their counts, summed, and each failed
        workspace's error."""
        total = cls(
            errors=[
                f"{outcome.slug}: {outcome.error}" for outcome in run.workspaces if outcome.error
            ]
        )
        for part in run.results:
            total.tenants += part.tenants
            total.delivered += part.delivered
            total.retrying += part.retrying
            total.failed += part.failed
            for kind, count in part.backlog.items():
                total.backlog[kind] = total.backlog.get(kind, 0) + count
        return total

    def summary(self) -> str:
        text = (
            f"{self.tenants} workspace(s): {self.delivered} delivered, "
            f"{self.retrying} to retry, {self.failed} failed"
        )
        return text + (f", {len(self.errors)} workspace error(s)" if self.errors else "")


def retry_delay(attempts: int, base_seconds: float) -> timedelta:
    """Exponential backoff after the ``attempts``-th failure: base, 2·base, 4·base, ... capped."""
    # The exponent is bounded so a large attempt count cannot overflow the float.
    seconds = base_seconds * 2 ** min(max(attempts - 1, 0), 32)
    return min(timedelta(seconds=seconds), MAX_BACKOFF)


def sign(secret: str, body: bytes) -> str:
    """The ``X-Webhook-Signature`` value: HMAC-SHA256 of the exact body bytes, hex."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(message: Claimed) -> bytes:
    """Canonical JSON (sorted keys, no spaces), so the signed bytes are reproducible."""
    document = {
        "event": message.event,
        "occurred_at": message.created_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "data": message.payload,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def deliver_all(
    runtime: Runtime,
    *,
    slugs: Sequence[str] | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
    mail_health: ProviderHealth | None = None,
) -> DeliveryReport:
    """One pass over every active workspace (or only ``slugs``): send what is due, record it.

    ``now`` fixes the clock for the whole pass (tests, replays); by default each step reads the
    wall clock. Suspended and deleting workspaces are skipped: their messages wait, not fail.
    A database error in one workspace is reported and does not stop the others.
    ``mail_health`` carries the e-mail providers' cool-downs from pass to pass; without it the
    pass starts with every provider available.
    """
    run = delivery_pass(
        runtime,
        slugs=slugs,
        now=now,
        batch_size=batch_size,
        max_batches=max_batches,
        mail_health=mail_health,
    )
    return DeliveryReport.total(run)


def delivery_pass(
    runtime: Runtime,
    *,
    slugs: Sequence[str] | None = None,
    now: datetime | None = None,
    batch_size: int = BATCH_SIZE,
    max_batches: int = MAX_BATCHES,
    stopping: Callable[[], bool] = lambda: False,
    mail_health: ProviderHealth | None = None,
) -> JobReport[DeliveryReport]:
    """``deliver_all``'s pass, each workspace's outcome kept: the in-process worker's run."""
    health = mail_health or provider_health(runtime.settings)
    with _http_client(runtime) as http, _mail_providers(runtime, health) as mail:
        job = delivery_job(runtime.settings, http=http, mail=mail, max_batches=max_batches)
        return run_each_workspace(
            runtime.sessions, job, slugs=slugs, now=now, batch_size=batch_size, stopping=stopping
        )


def delivery_job(
    settings: Settings,
    *,
    http: httpx.Client,
    mail: MailProviders | None,
    max_batches: int = MAX_BATCHES,
) -> Job[DeliveryReport]:
    """The delivery job for the runner, with the pass's clients (``mail=None``: no e-mail
    provider is configured, and e-mails wait in the outbox rather than fail)."""
    work = partial(deliver, settings=settings, http=http, mail=mail, max_batches=max_batches)
    return Job(DELIVERY_JOB, LockKey.DELIVERY, work, BATCH_SIZE)


def deliver(
    run: WorkspaceRun,
    *,
    settings: Settings,
    http: httpx.Client,
    mail: MailProviders | None,
    max_batches: int,
) -> DeliveryReport:
    """Send one workspace's due messages, at most ``max_batches`` batches of ``run.batch_size``,
    so one workspace's backlog cannot starve the others; the rest waits for the next pass."""
    # Without a provider e-mails stay queued until one is configured; they are not failed.
    kinds = ("webhook", "email") if mail is not None else ("webhook",)
    mail_seconds = mail.timeout_seconds if mail is not None else 0.0
    per_message = max(settings.webhook_timeout_seconds, mail_seconds)
    allow_private = settings.webhook_allow_private_addresses
    report = DeliveryReport(tenants=1)

    def batch(_after: int) -> list[int]:
        # Due order, not id order: a claimed row's lease moves it out of the next claim anyway.
        claimed = _claim(run, run.clock(), kinds=kinds, per_message_seconds=per_message)
        results = [_send(message, http, mail, run.clock, allow_private) for message in claimed]
        for result, gave_up in _record(run, settings, results, run.clock()):
            report.count(result.outcome, gave_up=gave_up)
        return [message.id for message in claimed]

    run.batches(batch, max_batches=max_batches)
    report.backlog = _backlog(run)
    return report


def _backlog(run: WorkspaceRun) -> dict[str, int]:
    # In the run's own transaction: read committed, so it sees what the batches recorded. The
    # partial index ix_outbox_due holds exactly these rows.
    rows = run.session.execute(
        select(OutboxMessage.kind, func.count())
        .where(OutboxMessage.delivered_at.is_(None), OutboxMessage.failed_at.is_(None))
        .group_by(OutboxMessage.kind)
    ).all()
    return {str(kind): int(count) for kind, count in rows}


def run_worker(
    runtime: Runtime,
    *,
    stop: threading.Event,
    interval_seconds: float = 5.0,
    slugs: Sequence[str] | None = None,
) -> None:
    """Deliver every ``interval_seconds`` until ``stop`` is set: the in-process worker (run it in
    a thread) and the body of ``helpdesk jobs deliver-webhooks --loop``."""
    health = provider_health(runtime.settings)
    while True:
        try:
            report = deliver_all(runtime, slugs=slugs, mail_health=health)
        except SQLAlchemyError:
            # The database is unreachable for now; the next pass tries again.
            log.exception("delivery pass failed")
        else:
            if report.delivered or report.retrying or report.failed:
                log.info("delivery pass: %s", report.summary())
        if stop.wait(interval_seconds):
            return


def _http_client(runtime: Runtime) -> httpx.Client:
    # Redirects are not followed: a subscription delivers to the URL its admin registered.
    return httpx.Client(
        timeout=runtime.settings.webhook_timeout_seconds,
        follow_redirects=False,
        headers={"User-Agent": USER_AGENT},
    )


def provider_health(settings: Settings) -> ProviderHealth:
    """Fresh circuit breakers for the configured e-mail providers."""
    return ProviderHealth(timedelta(seconds=settings.mail_provider_cooldown_seconds))


def _mail_providers(runtime: Runtime, health: ProviderHealth) -> MailProviders | nullcontext[None]:
    configs = runtime.settings.mail_provider_list
    if not configs:
        return nullcontext()
    return MailProviders(
        [sender_for(config) for config in configs], health, mail_from=runtime.settings.mail_from
    )


def _claim(
    run: WorkspaceRun, now: datetime, *, kinds: Sequence[str], per_message_seconds: float
) -> list[Claimed]:
    with run.transaction() as session:
        rows = session.execute(
            select(OutboxMessage, Webhook.url, Webhook.secret, Webhook.active)
            .outerjoin(Webhook, Webhook.id == OutboxMessage.webhook_id)
            .where(
                OutboxMessage.delivered_at.is_(None),
                OutboxMessage.failed_at.is_(None),
                OutboxMessage.next_attempt_at <= now,
                OutboxMessage.kind.in_(kinds),
            )
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(run.batch_size)
            .with_for_update(of=OutboxMessage, skip_locked=True)
        ).all()
        lease_until = now + timedelta(seconds=per_message_seconds * len(rows)) + LEASE_MARGIN
        claimed = []
        for message, url, secret, active in rows:
            message.next_attempt_at = lease_until
            claimed.append(
                Claimed(
                    id=message.id,
                    kind=message.kind,
                    event=message.event,
                    recipient=message.recipient,
                    payload=message.payload,
                    created_at=message.created_at,
                    webhook_url=url if active else None,
                    webhook_secret=secret if active else None,
                )
            )
        return claimed


def _send(
    message: Claimed,
    http: httpx.Client,
    mail: MailProviders | None,
    clock: Clock,
    allow_private: bool,
) -> Result:
    if message.kind == "webhook":
        url = message.webhook_url
        if url and not allow_private and (problem := resolved_address_problem(url)):
            return Result(message.id, Outcome.GIVE_UP, clock(), error=problem)
        return _post_webhook(message, http, clock())
    if message.kind == "email" and mail is not None:
        return _send_email(message, mail, clock())
    return Result(message.id, Outcome.GIVE_UP, clock(), error=f"unknown kind {message.kind!r}")


def _post_webhook(message: Claimed, http: httpx.Client, at: datetime) -> Result:
    if message.webhook_url is None or message.webhook_secret is None:
        return Result(message.id, Outcome.GIVE_UP, at, error="the webhook is disabled")
    body = webhook_body(message)
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Event": message.event,
        "X-Webhook-Delivery": str(message.id),
        "X-Webhook-Signature": sign(message.webhook_secret, body),
    }
    try:
        # Streamed and never read: a receiver cannot make the worker buffer a huge answer.
        with http.stream("POST", message.webhook_url, content=body, headers=headers) as response:
            code = response.status_code
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        return Result(message.id, Outcome.GIVE_UP, at, error=f"bad webhook URL: {exc}")
    except httpx.TimeoutException as exc:
        return Result(message.id, Outcome.RETRY, at, error=f"timed out ({type(exc).__name__})")
    except httpx.TransportError as exc:
        return Result(message.id, Outcome.RETRY, at, error=f"{type(exc).__name__}: {exc}")
    if 200 <= code < 300:
        return Result(message.id, Outcome.DELIVERED, at, status_code=code)
    # 408 and 429 ask to come back later; other 4xx (and 3xx) will not change by retrying.
    retry = code >= 500 or code in (408, 429)
    outcome = Outcome.RETRY if retry else Outcome.GIVE_UP
    return Result(message.id, outcome, at, status_code=code, error=f"HTTP {code}")


def _send_email(message: Claimed, mail: MailProviders, at: datetime) -> Result:
    if not message.recipient:
        return Result(message.id, Outcome.GIVE_UP, at, error="no recipient")
    try:
        email = compose(
            mail_from=mail.mail_from,
            to=message.recipient,
            subject=str(message.payload.get("subject", "")),
            body=str(message.payload.get("body", "")),
            event=message.event,
            date=at,
        )
    except ValueError as exc:  # a header the email package refuses (e.g. a line break)
        return Result(message.id, Outcome.GIVE_UP, at, error=f"unsendable message: {exc}")
    try:
        provider, code = mail.send(email, at)
    except MailError as exc:
        outcome = Outcome.GIVE_UP if exc.permanent else Outcome.RETRY
        return Result(message.id, outcome, at, status_code=exc.code, error=exc.detail)
    return Result(message.id, Outcome.DELIVERED, at, status_code=code, provider=provider)


def _record(
    run: WorkspaceRun, settings: Settings, results: Sequence[Result], now: datetime
) -> list[tuple[Result, bool]]:
    """Write each attempt and the message's new state; return (result, gave_up) per message."""
    recorded: list[tuple[Result, bool]] = []
    if not results:
        return recorded
    with run.transaction() as session:
        for result in results:
            message = session.get(OutboxMessage, result.outbox_id, with_for_update=True)
            if message is None or message.delivered_at or message.failed_at:
                # Its webhook was deleted meanwhile (the row went with it), or another worker
                # recorded it after our lease ran out: nothing left to update.
                continue
            error = result.error[:MAX_ERROR_CHARS] if result.error else None
            session.add(
                DeliveryAttempt(
                    outbox_id=message.id,
                    attempted_at=result.attempted_at,
                    status_code=result.status_code,
                    error=error,
                )
            )
            message.attempts += 1
            message.last_error = error
            gave_up = False
            if result.outcome == Outcome.DELIVERED:
                message.delivered_at = now
                message.provider = result.provider
            elif (
                result.outcome == Outcome.GIVE_UP
                or message.attempts >= settings.delivery_max_attempts
            ):
                message.failed_at = now
                gave_up = True
                log.warning(
                    "gave up on outbox message %s (%s) in %s after %s attempt(s): %s",
                    message.id,
                    message.event,
                    run.tenant.slug,
                    message.attempts,
                    error,
                )
            else:
                message.next_attempt_at = now + retry_delay(
                    message.attempts, settings.delivery_backoff_seconds
                )
            recorded.append((result, gave_up))
    return recorded
