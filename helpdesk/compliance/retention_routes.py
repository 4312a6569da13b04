"""HTTP for /retention: the workspace's policy, and a retention run on demand."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session, sessionmaker

from audit import retention
from audit.trail import actor_of, record_event
from auth.caller import Caller
from auth.permissions import Permission
from helpdesk.compliance import service as compliance
from helpdesk.compliance.retention_schemas import (
    RetentionPolicyIn,
    RetentionPolicyOut,
    RetentionReportOut,
)
from helpdesk.core.db import tenant_transaction
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RequestPathDep, RuntimeDep, Scope, require

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
    path: RequestPathDep,
    dry_run: Annotated[bool, Query(description="Count what would go; remove nothing.")] = False,
) -> RetentionReportOut:
    """Apply the policy now. The purge can take a while, so it runs on the blocking-work
    executor, off the event loop, in a transaction of its own that holds the workspace's
    retention lock (a second run meanwhile is a 409) and records this request's audit event,
    so the event commits with the run."""
    report = await path.off_loop(_run_recorded, runtime.sessions, scope.caller, dry_run=dry_run)
    scope.audited = True
    return RetentionReportOut.model_validate(report)


def _run_recorded(
    sessions: sessionmaker[Session], caller: Caller, *, dry_run: bool
) -> retention.RetentionReport:
    tenant = caller.workspace
    with tenant_transaction(sessions, tenant.schema_name, tenant.role_name) as session:
        report = compliance.run_retention(session, sessions, tenant, dry_run=dry_run)
        record_event(
            session,
            actor=actor_of(caller),
            action="retention.run",
            target_type="retention_policy",
            changes=report.audit_changes(),
        )
    return report
