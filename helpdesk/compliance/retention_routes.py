"""HTTP for /retention: the workspace's policy, and a retention run on demand."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from audit import retention
from auth.permissions import Permission
from helpdesk.compliance.retention_schemas import (
    RetentionPolicyIn,
    RetentionPolicyOut,
    RetentionReportOut,
)
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RuntimeDep, Scope, require

router = APIRouter(prefix="/retention", tags=["retention"], route_class=AppRoute)

PolicyReader = Annotated[Scope, Depends(require(Permission.RETENTION_READ))]
PolicyManager = Annotated[Scope, Depends(require(Permission.RETENTION_MANAGE))]
Runner = Annotated[Scope, Depends(require(Permission.RETENTION_RUN))]


@router.get("/policy", responses=error_responses(401, 403))
async def get_policy(scope: PolicyReader) -> RetentionPolicyOut:
    return RetentionPolicyOut.model_validate(await scope.run(retention.load_policy))


@router.put("/policy", responses=error_responses(400, 401, 403, 413, 422))
async def put_policy(body: RetentionPolicyIn, scope: PolicyManager) -> RetentionPolicyOut:
    policy, diff = await scope.run(retention.update_policy, body.model_dump(exclude_unset=True))
    await scope.audit("retention.policy_update", "retention_policy", changes=diff)
    return RetentionPolicyOut.model_validate(policy)


@router.post("/run", responses=error_responses(401, 403, 409, 422))
async def run(
    scope: Runner,
    runtime: RuntimeDep,
    dry_run: Annotated[bool, Query(description="Count what would go; remove nothing.")] = False,
) -> RetentionReportOut:
    """Apply the policy now. The request holds the workspace's retention lock while the purge
    runs in short transactions of its own; a second run meanwhile is a 409."""
    report = await scope.run(
        retention.run_retention, runtime.sessions, scope.caller.workspace, dry_run=dry_run
    )
    await scope.audit("retention.run", "retention_policy", changes=report.audit_changes())
    return RetentionReportOut.model_validate(report)
