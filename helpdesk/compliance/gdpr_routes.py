"""HTTP for /gdpr: a subject's access export and erasure, both audited.

The erasure's own audit event names the customer record by id and counts what changed; it never
holds the address it erased.
"""

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, Path

from auth.permissions import Permission
from helpdesk.compliance import service as compliance
from helpdesk.compliance.gdpr_schemas import SUBJECT_EMAIL_PATTERN, ErasureOut, SubjectExport
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, Scope, require

router = APIRouter(prefix="/gdpr", tags=["gdpr"], route_class=AppRoute)

Exporter = Annotated[Scope, Depends(require(Permission.GDPR_EXPORT))]
Eraser = Annotated[Scope, Depends(require(Permission.GDPR_ERASE))]
SubjectEmail = Annotated[
    str,
    Path(
        min_length=3,
        max_length=320,
        pattern=SUBJECT_EMAIL_PATTERN,
        description="The subject's email address (matched case-insensitively).",
    ),
]


@router.get("/subjects/{email}/export", responses=error_responses(401, 403, 422))
async def export_subject(email: SubjectEmail, scope: Exporter) -> SubjectExport:
    subject, document = await scope.run(compliance.export_subject, scope.caller.workspace, email)
    export = SubjectExport.model_validate(document)
    await scope.audit(
        "gdpr.export",
        "customer",
        subject.customer_id,
        # "email" is a personal field: the trail keeps it apart, and a later erasure removes it.
        changes={
            "email": subject.email,
            "tickets": len(export.tickets),
            "comments": len(export.comments),
            "audit_events": len(export.audit_events),
        },
        personal_data=True,
    )
    return export


@router.post("/subjects/{email}/erase", responses=error_responses(401, 403, 409, 422))
async def erase_subject(email: SubjectEmail, scope: Eraser) -> ErasureOut:
    subject, counts = await scope.run(compliance.erase_subject, scope.caller.workspace, email)
    await scope.audit(
        "gdpr.erase", "customer", subject.customer_id, changes=asdict(counts), personal_data=True
    )
    return ErasureOut(**asdict(counts))
