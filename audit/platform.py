"""Writes to the platform's audit trail, in the caller's transaction."""

import uuid
from typing import Any

from sqlalchemy.orm import Session

from audit.models import PlatformAuditEvent
from audit.trail import without_secrets
from helpdesk.core.request_context import current_request


def record_platform_event(
    session: Session,
    *,
    action: str,
    outcome: str = "success",
    actor_id: uuid.UUID | None = None,
    actor_email: str | None = None,
    target_type: str | None = None,
    target_id: str | None = None,
    tenant_id: uuid.UUID | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    request = current_request.get()
    session.add(
        PlatformAuditEvent(
            actor_id=actor_id,
            actor_email=actor_email,
            action=action,
            target_type=target_type,
            target_id=target_id,
            tenant_id=tenant_id,
            outcome=outcome,
            request_id=request.request_id if request else None,
            ip=request.ip if request else None,
            user_agent=request.user_agent if request else None,
            details=without_secrets(details or {}),
        )
    )
    session.flush()
