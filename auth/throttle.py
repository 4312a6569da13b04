"""Failed-login throttling per account and per client address, counted in PostgreSQL so every
server process shares the same counts."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from auth.models import LoginAttempt
from helpdesk.core.errors import RateLimited
from helpdesk.core.settings import Settings


def check_login_allowed(session: Session, settings: Settings, email: str, address: str) -> None:
    since = datetime.now(UTC) - timedelta(seconds=settings.login_window_seconds)
    for column, value, limit in (
        (LoginAttempt.email, email.lower(), settings.login_attempts_per_account),
        (LoginAttempt.address, address, settings.login_attempts_per_address),
    ):
        count, oldest = session.execute(
            select(func.count(), func.min(LoginAttempt.at)).where(
                column == value, LoginAttempt.at > since
            )
        ).one()
        if count >= limit:
            retry_after = max(1, int((oldest - since).total_seconds()) + 1)
            raise RateLimited(
                "Too many failed sign-in attempts; wait before trying again.",
                retry_after=retry_after,
            )


def record_login_failure(session: Session, email: str, address: str) -> None:
    session.add(LoginAttempt(email=email.lower(), address=address))
    session.flush()


def clear_login_failures(session: Session, email: str) -> None:
    session.execute(delete(LoginAttempt).where(LoginAttempt.email == email.lower()))
