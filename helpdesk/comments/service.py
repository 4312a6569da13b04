"""Comment rules: who may write public replies or internal notes, and who sees which."""

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

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
