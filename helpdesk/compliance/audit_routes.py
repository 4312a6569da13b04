"""HTTP for /audit: list and verify a workspace's trail. Reading the trail is audited too."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from audit import queries
from auth.permissions import Permission
from helpdesk.compliance.schemas import AuditEventOut, AuditFilterParams, AuditPage, VerifyOut
from helpdesk.core.pagination import Limit, decode_cursor, id_page
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, Scope, require

router = APIRouter(prefix="/audit", tags=["audit"], route_class=AppRoute)

Reader = Annotated[Scope, Depends(require(Permission.AUDIT_READ))]
Verifier = Annotated[Scope, Depends(require(Permission.AUDIT_VERIFY))]


def to_filters(params: AuditFilterParams) -> queries.EventFilters:
    return queries.EventFilters(**params.model_dump())


@router.get("/events", responses=error_responses(401, 403, 422))
async def list_events(
    scope: Reader,
    params: Annotated[AuditFilterParams, Query()],
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditPage:
    rows = await scope.run(
        queries.page, to_filters(params), after_id=decode_cursor(cursor), limit=limit + 1
    )
    items, next_cursor = id_page(
        [AuditEventOut.model_validate(queries.event_document(e)) for e in rows], limit
    )
    await scope.audit(
        "audit.read",
        "audit_event",
        changes={"filters": params.model_dump(mode="json", exclude_none=True), "count": len(items)},
        personal_data=True,
    )
    return AuditPage(items=items, next_cursor=next_cursor)


@router.get("/verify", responses=error_responses(401, 403))
async def verify(scope: Verifier) -> VerifyOut:
    verdict = await scope.run(queries.verify_workspace)
    await scope.audit(
        "audit.verify",
        "audit_event",
        changes={"valid": verdict.valid, "events_checked": verdict.events_checked},
    )
    return VerifyOut(
        valid=verdict.valid,
        events_checked=verdict.events_checked,
        first_invalid_id=verdict.first_invalid_id,
        chain_head=verdict.head,
    )
