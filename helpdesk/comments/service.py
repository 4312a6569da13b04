"""Comment rules: who may write public replies or internal notes, and who sees which."""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from audit.gdpr import ERASED, REDACTED, Subject
from auth.caller import Caller
from auth.permissions import Permission, TicketScope
from helpdesk.comments.schemas import CommentIn, CommentOut
from helpdesk.core.errors import Forbidden
from helpdesk.outbox.service import publish_event
from helpdesk.tickets.models import Comment
from helpdesk.tickets.service import find_visible, first_response

# Roles whose comments are internal notes only (API.md: a viewer's comments.create).
INTERNAL_ONLY_ROLES = frozenset({"viewer"})


def add_comment(session: Session, caller: Caller, ticket_id: int, data: CommentIn) -> Comment:
    ticket = find_visible(session, caller, ticket_id, lock=True)
    is_customer = caller.ticket_scope == TicketScope.OWN
    if is_customer and not data.public:
        raise Forbidden(
            "You lack permission to write internal notes; customers reply publicly.",
            permission=Permission.COMMENTS_CREATE.value,
        )
    if data.public and caller.role in INTERNAL_ONLY_ROLES:
        raise Forbidden(
            "You lack permission to reply publicly; your role writes internal notes.",
            permission=Permission.COMMENTS_CREATE.value,
        )
    now = datetime.now(UTC)
    comment = Comment(
        ticket_id=ticket.id,
        author_id=caller.user_id,
        body=data.body,
        public=data.public,
        created_at=now,
    )
    session.add(comment)
    if data.public and not is_customer and Permission.TICKETS_UPDATE in caller.permissions:
        first_response(session, ticket, now)
    session.flush()
    publish_event(
        session,
        "comment.created",
        {"comment": CommentOut.model_validate(comment).model_dump(mode="json")},
    )
    return comment


def list_comments(
    session: Session, caller: Caller, ticket_id: int, *, after_id: int | None, limit: int
) -> Sequence[Comment]:
    find_visible(session, caller, ticket_id)
    query = select(Comment).where(Comment.ticket_id == ticket_id).order_by(Comment.id).limit(limit)
    if caller.ticket_scope == TicketScope.OWN:
        query = query.where(Comment.public.is_(True))
    if after_id is not None:
        query = query.where(Comment.id > after_id)
    return session.scalars(query).all()


# --- GDPR: this domain's part of a subject's export and erasure --------------------------------

_WRITTEN_BY = text("SELECT id FROM comments WHERE author_id = ANY(:user_ids) ORDER BY id")
# What they wrote anywhere, and the whole conversation on the tickets they requested.
_COMMENT_DOCS = text(
    "SELECT id, ticket_id, author_id, body, public, created_at,"
    " author_id = ANY(:user_ids) AS by_subject"
    " FROM comments WHERE author_id = ANY(:user_ids) OR ticket_id = ANY(:ticket_ids)"
    " ORDER BY id"
)
_REDACT_WRITTEN = text(
    "UPDATE comments SET body = :redacted"
    " WHERE author_id = ANY(:user_ids) AND body <> :redacted RETURNING id"
)
# Others' comments that mention the subject: an agent's reply naming her, a note with her phone.
_UNMENTION = text(
    "UPDATE comments SET body = regexp_replace(body, :pattern, :erased, 'gi')"
    " WHERE body ~* :pattern RETURNING id"
)


def written_by(session: Session, user_ids: Sequence[uuid.UUID]) -> list[int]:
    if not user_ids:
        return []
    return list(session.scalars(_WRITTEN_BY, {"user_ids": list(user_ids)}))


def export_subject(session: Session, subject: Subject) -> list[dict[str, Any]]:
    params = {"user_ids": list(subject.user_ids), "ticket_ids": list(subject.ticket_ids)}
    return [dict(row) for row in session.execute(_COMMENT_DOCS, params).mappings()]


def erase_subject(session: Session, subject: Subject, *, now: datetime) -> int:
    """Comments the subject wrote become "[redacted]"; any other comment loses its mentions of
    the subject. Returns how many comments changed."""
    changed: set[int] = set()
    if subject.user_ids:
        params = {"user_ids": list(subject.user_ids), "redacted": REDACTED}
        changed.update(session.scalars(_REDACT_WRITTEN, params))
    changed.update(session.scalars(_UNMENTION, {"pattern": subject.pattern, "erased": ERASED}))
    return len(changed)
