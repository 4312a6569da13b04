"""Compliance officers' pages: the audit log (filters, paging), chain verification, export
download, GDPR subject export and erasure (behind a typed confirmation), and retention (policy,
a dry run shown before a real run).

Each page calls the API route it stands for (same service calls, same audit event, same
streamed file), so the console cannot drift from the API: only the input (a form) and the
output (a page) differ.
"""

import json
import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from audit.export_file import ExportFormat
from auth.permissions import Permission
from helpdesk.compliance import audit_routes, export_routes, gdpr_routes, retention_routes
from helpdesk.compliance.gdpr_schemas import SUBJECT_EMAIL_PATTERN
from helpdesk.compliance.retention_schemas import RetentionPolicyIn
from helpdesk.compliance.schemas import AuditFilterParams
from helpdesk.console.web import SECURITY_HEADERS, allow, page, parse
from helpdesk.core.errors import InvalidInput
from helpdesk.pipeline import AppRoute, RequestPathDep, RuntimeDep, Scope

router = APIRouter(route_class=AppRoute)

Reader = Annotated[Scope, Depends(allow(Permission.AUDIT_READ))]
Verifier = Annotated[Scope, Depends(allow(Permission.AUDIT_VERIFY))]
Exporter = Annotated[Scope, Depends(allow(Permission.AUDIT_EXPORT))]
SubjectExporter = Annotated[Scope, Depends(allow(Permission.GDPR_EXPORT))]
Eraser = Annotated[Scope, Depends(allow(Permission.GDPR_ERASE))]
PolicyReader = Annotated[Scope, Depends(allow(Permission.RETENTION_READ))]
PolicyManager = Annotated[Scope, Depends(allow(Permission.RETENTION_MANAGE))]
Runner = Annotated[Scope, Depends(allow(Permission.RETENTION_RUN))]
Text = Annotated[str | None, Query(max_length=64)]
PAGE_SIZE = 50
FILTER_FIELDS = ("action", "outcome", "actor_id", "target_type", "target_id", "since", "until")


def _filters(request: Request) -> dict[str, str]:
    """The filter form's non-empty fields (a blank box means "any")."""
    return {
        key: value.strip()
        for key in FILTER_FIELDS
        if (value := request.query_params.get(key)) and value.strip()
    }


@router.get("/audit")
async def audit_log(request: Request, scope: Reader, cursor: Text = None) -> Response:
    chosen = _filters(request)
    params = parse(AuditFilterParams, **chosen)
    result = await audit_routes.list_events(scope, params, limit=PAGE_SIZE, cursor=cursor)
    query = urlencode(chosen)
    return page(
        request,
        "audit.html",
        scope,
        title="Audit log",
        events=result.items,
        next_cursor=result.next_cursor,
        filters=chosen,
        query=query,
    )


@router.get("/audit/verify")
async def verify(request: Request, scope: Verifier) -> Response:
    verdict = await audit_routes.verify(scope)
    return page(request, "verify.html", scope, title="Verify the audit chain", verdict=verdict)


@router.get("/audit/export")
async def export(
    scope: Exporter,
    runtime: RuntimeDep,
    request: Request,
    export_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.NDJSON,
) -> Response:
    params = parse(AuditFilterParams, **_filters(request))
    return await export_routes.export_events(scope, runtime, params, export_format)


@router.get("/gdpr")
async def gdpr_page(request: Request, scope: SubjectExporter) -> Response:
    return page(request, "gdpr.html", scope, title="GDPR subject requests")


def _subject(email: str) -> str:
    email = email.strip()
    if not re.fullmatch(SUBJECT_EMAIL_PATTERN, email):
        raise InvalidInput("Give the subject's e-mail address.", field="email")
    return email


@router.get("/gdpr/export")
async def subject_export(
    scope: SubjectExporter, email: Annotated[str, Query(max_length=320)]
) -> Response:
    document = await gdpr_routes.export_subject(_subject(email), scope)
    body = json.dumps(jsonable_encoder(document), indent=2)
    return Response(
        body,
        media_type="application/json",
        headers={
            **SECURITY_HEADERS,
            "Content-Disposition": 'attachment; filename="subject-export.json"',
        },
    )


@router.post("/gdpr/erase")
async def erase(
    request: Request,
    scope: Eraser,
    email: Annotated[str, Form(max_length=320)],
    confirmation: Annotated[str, Form(max_length=400)],
) -> Response:
    """Erasure cannot be undone: the officer types ``erase <address>`` to confirm."""
    subject = _subject(email)
    if confirmation.strip().lower() != f"erase {subject}".lower():
        raise InvalidInput(
            f'Nothing was erased: type "erase {subject}" to confirm.', field="confirmation"
        )
    counts = await gdpr_routes.erase_subject(subject, scope)
    return page(request, "gdpr.html", scope, title="GDPR subject requests", erased=counts)


async def _retention_page(request: Request, scope: Scope, **context: Any) -> Response:
    policy = await retention_routes.get_policy(scope)
    return page(request, "retention.html", scope, title="Retention", policy=policy, **context)


@router.get("/retention")
async def retention(request: Request, scope: PolicyReader) -> Response:
    return await _retention_page(request, scope)


@router.post("/retention/policy")
async def save_policy(
    request: Request,
    scope: PolicyManager,
    closed_ticket_days: Annotated[str, Form(max_length=10)] = "",
    audit_event_days: Annotated[str, Form(max_length=10)] = "",
    legal_hold: Annotated[str | None, Form(max_length=4)] = None,
) -> Response:
    body = parse(
        RetentionPolicyIn,
        closed_ticket_days=closed_ticket_days.strip() or None,
        audit_event_days=audit_event_days.strip() or None,
        legal_hold=legal_hold == "on",
    )
    await retention_routes.put_policy(body, scope)
    return await _retention_page(request, scope, saved=True)


@router.post("/retention/run")
async def run_retention(
    request: Request,
    scope: Runner,
    runtime: RuntimeDep,
    path: RequestPathDep,
    mode: Annotated[str, Form(pattern="^(dry_run|run)$")] = "dry_run",
) -> Response:
    """A dry run counts what the policy would remove; the page then offers the real run."""
    dry_run = mode == "dry_run"
    report = await retention_routes.run(scope, runtime, path, dry_run=dry_run)
    return await _retention_page(request, scope, report=report)
