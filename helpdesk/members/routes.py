"""HTTP for /members."""

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from auth.permissions import Permission
from helpdesk.core.pagination import Limit, decode_key_cursor, key_page
from helpdesk.errors import error_responses
from helpdesk.members import service
from helpdesk.members.schemas import MemberAdded, MemberIn, MemberOut, MemberPage, MemberPatch
from helpdesk.pipeline import AppRoute, RequestPathDep, Scope, require

router = APIRouter(prefix="/members", tags=["members"], route_class=AppRoute)

Manager = Annotated[Scope, Depends(require(Permission.MEMBERS_MANAGE))]


@router.get("", responses=error_responses(401, 403, 422))
async def list_members(
    scope: Manager,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
) -> MemberPage:
    rows = await scope.run(
        service.list_members, scope.caller, after=decode_key_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = key_page(rows, limit, key=lambda m: m.email.lower())
    await scope.audit("member.list", "member", changes={"count": len(items)}, personal_data=True)
    return MemberPage(items=items, next_cursor=next_cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 409, 413, 422)
)
async def add_member(body: MemberIn, scope: Manager, path: RequestPathDep) -> MemberAdded:
    password_hash = await path.hash_password(body.password) if body.password else None
    member, invitation = await scope.run(
        service.add_member, scope.caller, body, password_hash=password_hash
    )
    await scope.audit(
        "member.add",
        "member",
        member.user_id,
        changes={"email": member.email, "role": member.role, "invited": invitation is not None},
        personal_data=True,
    )
    return MemberAdded(**member.model_dump(), invitation_token=invitation)


@router.patch("/{user_id}", responses=error_responses(400, 401, 403, 404, 409, 413, 422))
async def update_member(user_id: uuid.UUID, body: MemberPatch, scope: Manager) -> MemberOut:
    member, changes = await scope.run(service.update_member, scope.caller, user_id, body)
    # One event per request: a role change keeps its own action, whatever else changed with it.
    action = "member.role_change" if body.role is not None else "member.update"
    await scope.audit(action, "member", user_id, changes=changes)
    return member


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def remove_member(user_id: uuid.UUID, scope: Manager) -> Response:
    removed = await scope.run(service.remove_member, scope.caller, user_id)
    await scope.audit("member.remove", "member", user_id, changes={"role": removed.role})
    return Response(status_code=status.HTTP_204_NO_CONTENT)
