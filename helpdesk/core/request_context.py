"""Who is asking, from where: set by the HTTP middleware, read by logging and the audit trail."""

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestInfo:
    request_id: str
    ip: str | None
    user_agent: str | None


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)
