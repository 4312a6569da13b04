"""Claiming an idempotency key, and keeping the result of the request that claimed it.

The claim is a row inserted in the request's own transaction and the result is written to it
before commit, so the key and the change it made commit together or not at all: a write that
committed just before its connection dropped is found by the retry, and one that did not
commit leaves the key free. A concurrent retry waits on the first one's row lock, then sees
its result.
"""

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from helpdesk.core.errors import Conflict, InvalidInput
from helpdesk.idempotency.models import MAX_KEY_LENGTH, IdempotencyKey

# API.md: a retry within 24 hours returns the first result; after that the key is free again.
KEPT_FOR = timedelta(hours=24)
HEADER = "Idempotency-Key"


@dataclass(frozen=True, slots=True)
class StoredResult:
    status_code: int
    body: Any


class IdempotentReplay(Exception):
    """The key was used before for this same request: answer with its first result."""

    def __init__(self, result: StoredResult) -> None:
        super().__init__(result.status_code)
        self.result = result


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in key):
        raise InvalidInput(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} visible ASCII characters "
            "(a UUID is a good choice).",
            code="invalid_idempotency_key",
            field=HEADER,
            source="header",
        )
    return key


def request_hash(method: str, target: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.encode(), target.encode(), body):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def claim(session: Session, user_id: uuid.UUID, key: str, fingerprint: str) -> None:
    """Claim ``key`` for this request, or raise :class:`IdempotentReplay` with the result of
    the request that claimed it first (a :class:`Conflict` if that one asked something else)."""
    mine = (IdempotencyKey.user_id == user_id) & (IdempotencyKey.key == key)
    # The caller's expired keys go first: they are free for reuse, and this keeps the table
    # as small as a day of one member's retries.
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.created_at < func.now() - KEPT_FOR,
        )
    )
    claimed = session.execute(
        insert(IdempotencyKey)
        .values(user_id=user_id, key=key, request_hash=fingerprint)
        .on_conflict_do_nothing()
        .returning(IdempotencyKey.key)
    ).first()
    if claimed is not None:
        return
    first = session.execute(
        select(IdempotencyKey.request_hash, IdempotencyKey.status_code, IdempotencyKey.body).where(
            mine
        )
    ).one()
    if first.request_hash != fingerprint:
        raise Conflict(
            f"This {HEADER} was already used for a different request; "
            "send a new key with a new request.",
            code="idempotency_key_reused",
        )
    if first.status_code is None:
        # Only a request that claimed a key and then answered without a result could leave
        # this; say so rather than run the change a second time.
        raise Conflict(
            f"The request that first used this {HEADER} has no result to repeat.",
            code="idempotency_key_unfinished",
        )
    raise IdempotentReplay(StoredResult(first.status_code, first.body))


def remember(session: Session, user_id: uuid.UUID, key: str, status_code: int, body: Any) -> None:
    """Keep the claiming request's result, in its own transaction."""
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
        .values(status_code=status_code, body=body)
    )
