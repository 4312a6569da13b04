"""HTTP for /roles."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from auth.permissions import Permission
from helpdesk.pipeline import Scope, require
from helpdesk.roles import service
from helpdesk.roles.schemas import RoleIn, RoleList, RoleOut, RolePatch

router = APIRouter(prefix="/roles", tags=["roles"])

Manager = Annotated[Scope, Depends(require(Permission.ROLES_MANAGE))]
_ERRORS: dict[int | str, dict[str, str]] = {401: {}, 403: {}}


@router.get("", responses=_ERRORS)
def list_roles(scope: Manager) -> RoleList:
    return RoleList(items=service.list_roles(scope.session, scope.caller))


@router.post("", status_code=status.HTTP_201_CREATED, responses={**_ERRORS, 409: {}, 422: {}})
def create_role(body: RoleIn, scope: Manager) -> RoleOut:
    role = service.create_role(scope.session, scope.caller, body)
    scope.audit("role.create", "role", role.name, changes=role.model_dump(mode="json"))
    return role


@router.patch("/{name}", responses={**_ERRORS, 404: {}, 422: {}})
def update_role(name: str, body: RolePatch, scope: Manager) -> RoleOut:
    role, changes = service.update_role(scope.session, scope.caller, name, body)
    scope.audit("role.update", "role", name, changes=changes)
    return role


@router.delete(
    "/{name}", status_code=status.HTTP_204_NO_CONTENT, responses={**_ERRORS, 404: {}, 409: {}}
)
def delete_role(name: str, scope: Manager) -> Response:
    service.delete_role(scope.session, scope.caller, name)
    scope.audit("role.delete", "role", name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
