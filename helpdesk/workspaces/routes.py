"""HTTP for /platform/tenants (platform operators only)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from helpdesk.pipeline import Operator
from helpdesk.workspaces import service
from helpdesk.workspaces.schemas import WorkspaceIn, WorkspaceOut, WorkspacePage, WorkspacePatch
from tenants import registry
from tenants.models import TenantStatus

router = APIRouter(prefix="/platform/tenants", tags=["platform"])
_ERRORS: dict[int | str, dict[str, str]] = {401: {}, 403: {}}


@router.post("", status_code=status.HTTP_201_CREATED, responses={**_ERRORS, 409: {}, 422: {}})
def create_workspace(body: WorkspaceIn, scope: Operator) -> WorkspaceOut:
    tenant = service.create_workspace(
        scope.session,
        slug=body.slug,
        name=body.name,
        admin_email=str(body.admin_email),
        admin_password=body.admin_password,
        admin_name=body.admin_name,
        actor_id=scope.caller.user_id,
    )
    return WorkspaceOut.model_validate(tenant)


@router.get("", responses=_ERRORS)
def list_workspaces(
    scope: Operator,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
) -> WorkspacePage:
    tenants = service.list_workspaces(scope.session, after=cursor, limit=limit + 1)
    items = [WorkspaceOut.model_validate(t) for t in tenants[:limit]]
    return WorkspacePage(items=items, next_cursor=items[-1].slug if len(tenants) > limit else None)


@router.get("/{slug}", responses={**_ERRORS, 404: {}})
def get_workspace(slug: str, scope: Operator) -> WorkspaceOut:
    return WorkspaceOut.model_validate(registry.get_by_slug(scope.session, slug))


@router.patch("/{slug}", responses={**_ERRORS, 404: {}, 409: {}})
def update_workspace(slug: str, body: WorkspacePatch, scope: Operator) -> WorkspaceOut:
    tenant = service.update_workspace(
        scope.session,
        slug,
        status=TenantStatus(body.status) if body.status else None,
        name=body.name,
        actor_id=scope.caller.user_id,
    )
    return WorkspaceOut.model_validate(tenant)


@router.delete("/{slug}", status_code=status.HTTP_202_ACCEPTED, responses={**_ERRORS, 404: {}})
def delete_workspace(slug: str, scope: Operator) -> WorkspaceOut:
    tenant = service.schedule_workspace_deletion(scope.session, slug, actor_id=scope.caller.user_id)
    return WorkspaceOut.model_validate(tenant)
