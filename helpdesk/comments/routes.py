"""HTTP for /tickets/{id}/comments."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from auth.permissions import Permission
from helpdesk.comments import service
from helpdesk.comments.schemas import CommentIn, CommentOut, CommentPage
from helpdesk.core.pagination import Limit, decode_cursor, id_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RowId, Scope, require

router = APIRouter(prefix="/tickets/{ticket_id}/comments", tags=["comments"], route_class=AppRoute)

Reader = Annotated[Scope, Depends(require(Permission.TICKETS_READ))]
Writer = Annotated[Scope, Depends(require(Permission.COMMENTS_CREATE))]


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 404, 413, 422)
)
async def add_comment(ticket_id: RowId, body: CommentIn, scope: Writer) -> CommentOut:
    comment = await scope.run(service.add_comment, scope.caller, ticket_id, body)
    await scope.audit(
        "comment.create",
        "comment",
        comment.id,
        changes={"ticket_id": ticket_id, "public": body.public, "body": body.body},
        personal_data=True,
    )
    return CommentOut.model_validate(comment)


@router.get("", responses=error_responses(401, 403, 404, 422))
async def list_comments(
    ticket_id: RowId,
    scope: Reader,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> CommentPage:
    rows = await scope.run(
        service.list_comments,
        scope.caller,
        ticket_id,
        after_id=decode_cursor(cursor),
        limit=limit + 1,
    )
    items, next_cursor = id_page([CommentOut.model_validate(c) for c in rows], limit)
    await scope.audit(
        "comment.list", "ticket", ticket_id, changes={"count": len(items)}, personal_data=True
    )
    return CommentPage(items=items, next_cursor=next_cursor)
