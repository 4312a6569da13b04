"""HTTP for /platform/tenants (platform operators only)."""

from typing import Annotated

from fastapi import APIRouter, Query, status

from helpdesk.core.pagination import Limit, decode_key_cursor, key_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, Operator, RequestPathDep
from helpdesk.workspaces import service
from helpdesk.workspaces.schemas import WorkspaceIn, WorkspaceOut, WorkspacePage, WorkspacePatch
from tenants import registry
from tenants.models import TenantStatus

router = APIRouter(prefix="/platform/tenants", tags=["platform"], route_class=AppRoute)
_PLATFORM = {
    403: "The token is a workspace member's: only a platform operator manages workspaces.",
    404: "No workspace has this slug.",
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409, 413, 422, described=_PLATFORM),
)
async def create_workspace(
    body: WorkspaceIn, scope: Operator, path: RequestPathDep
) -> WorkspaceOut:
    admin_password_hash = await path.hash_password(body.admin_password)
    tenant = await scope.run(
        service.create_workspace,
        slug=body.slug,
        name=body.name,
        admin_email=str(body.admin_email),
        admin_password_hash=admin_password_hash,
        admin_name=body.admin_name,
        actor_id=scope.caller.user_id,
    )
    return WorkspaceOut.model_validate(tenant)


@router.get("", responses=error_responses(401, 403, 422, described=_PLATFORM))
async def list_workspaces(
    scope: Operator,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> WorkspacePage:
    after = decode_key_cursor(cursor)
    tenants = await scope.run(service.list_workspaces, after=after, limit=limit + 1)
    items, next_cursor = key_page(
        [WorkspaceOut.model_validate(t) for t in tenants], limit, key=lambda w: w.slug
    )
    return WorkspacePage(items=items, next_cursor=next_cursor)


@router.get("/{slug}", responses=error_responses(401, 403, 404, 422, described=_PLATFORM))
async def get_workspace(slug: str, scope: Operator) -> WorkspaceOut:
    return WorkspaceOut.model_validate(await scope.run(registry.get_by_slug, slug))


@router.patch(
    "/{slug}", responses=error_responses(400, 401, 403, 404, 409, 413, 422, described=_PLATFORM)
)
async def update_workspace(slug: str, body: WorkspacePatch, scope: Operator) -> WorkspaceOut:
    tenant = await scope.run(
        service.update_workspace,
        slug,
        status=TenantStatus(body.status) if body.status else None,
        name=body.name,
        actor_id=scope.caller.user_id,
    )
    return WorkspaceOut.model_validate(tenant)


@router.delete(
    "/{slug}",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403, 404, 422, described=_PLATFORM),
)
async def delete_workspace(slug: str, scope: Operator) -> WorkspaceOut:
    tenant = await scope.run(
        service.schedule_workspace_deletion, slug, actor_id=scope.caller.user_id
    )
    return WorkspaceOut.model_validate(tenant)
