"""Who is asking, from where: set by the HTTP middleware, read by logging and the audit trail."""

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

API_PREFIX = "/api/v1"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    request_id: str
    ip: str | None
    user_agent: str | None


current_request: ContextVar[RequestInfo | None] = ContextVar("current_request", default=None)


def route_template(scope: Mapping[str, Any]) -> str | None:
    """The matched route as API.md writes it (``/tickets/{ticket_id}``), or None before routing
    or when nothing matched. Logs and the audit chain keep this rather than the concrete path,
    which can name a person (``/gdpr/subjects/{email}/...``)."""
    path = getattr(scope.get("route"), "path", None)
    # FastAPI versions differ on whether an included route's path carries the include prefix.
    return path.removeprefix(API_PREFIX) if isinstance(path, str) else None
