"""Idempotency keys: the first result of a POST, kept so a retry returns it again."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, SmallInteger, String, Uuid, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.core.models import TenantBase

MAX_KEY_LENGTH = 255


class IdempotencyKey(TenantBase):
    __tablename__ = "idempotency_keys"

    # Keys are the caller's own (API.md: "same caller"): two members may choose the same one.
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH), primary_key=True)
    # What was asked: a retry must ask the same, or it is a different request under a used key.
    request_hash: Mapped[str] = mapped_column(String(64))
    # Null until the request's own transaction records its result; a concurrent retry waits
    # on the key's row lock meanwhile, so it never sees the null.
    status_code: Mapped[int | None] = mapped_column(SmallInteger)
    body: Mapped[Any | None] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
