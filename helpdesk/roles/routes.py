"""HTTP for /roles."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from auth.permissions import Permission
from helpdesk.core.pagination import Limit, decode_key_cursor, key_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, Scope, require
from helpdesk.roles import service
from helpdesk.roles.schemas import RoleIn, RoleList, RoleOut, RolePatch

router = APIRouter(prefix="/roles", tags=["roles"], route_class=AppRoute)

Manager = Annotated[Scope, Depends(require(Permission.ROLES_MANAGE))]


@router.get("", responses=error_responses(401, 403, 422))
async def list_roles(
    scope: Manager,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> RoleList:
    roles = await scope.run(
        service.list_roles, scope.caller, after=decode_key_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = key_page(roles, limit, key=lambda r: r.name)
    return RoleList(items=items, next_cursor=next_cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 409, 413, 422)
)
async def create_role(body: RoleIn, scope: Manager) -> RoleOut:
    role = await scope.run(service.create_role, scope.caller, body)
    await scope.audit("role.create", "role", role.name, changes=role.model_dump(mode="json"))
    return role


@router.patch("/{name}", responses=error_responses(400, 401, 403, 404, 413, 422))
async def update_role(name: str, body: RolePatch, scope: Manager) -> RoleOut:
    role, changes = await scope.run(service.update_role, scope.caller, name, body)
    await scope.audit("role.update", "role", name, changes=changes)
    return role


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def delete_role(name: str, scope: Manager) -> Response:
    await scope.run(service.delete_role, scope.caller, name)
    await scope.audit("role.delete", "role", name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
