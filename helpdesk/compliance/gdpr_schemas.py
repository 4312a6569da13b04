"""Response bodies of /gdpr: the subject access export and the erasure counts."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from helpdesk.compliance.schemas import AuditEventOut

# An address as it reaches the path: one @, no spaces, quotes or backslashes (which would
# appear escaped in JSON text and so slip past the search for mentions), nor NUL (which
# PostgreSQL text cannot hold).
SUBJECT_EMAIL_PATTERN = r"^[^@\s\"\\/\x00]+@[^@\s\"\\/\x00]+$"


class ExportWorkspace(BaseModel):
    slug: str
    name: str


class ExportCustomer(BaseModel):
    id: int
    email: str
    name: str
    company: str | None
    phone: str | None
    tier: str
    created_at: datetime
    updated_at: datetime


class ExportMembership(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    created_at: datetime


class ExportTicket(BaseModel):
    id: int
    title: str
    description: str
    status: str
    priority: str
    category: str | None
    tags: list[str]
    assignee_id: uuid.UUID | None
    sla_due_at: datetime | None
    first_response_at: datetime | None
    sla_breached: bool
    escalated: bool
    status_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class ExportComment(BaseModel):
    id: int
    ticket_id: int
    author_id: uuid.UUID
    body: str
    public: bool
    created_at: datetime
    by_subject: bool


class ExportMessage(BaseModel):
    id: int
    kind: str
    event: str
    recipient: str | None
    payload: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None
    failed_at: datetime | None
    provider: str | None = None  # the e-mail provider that sent it


class SubjectExport(BaseModel):
    """Everything the workspace holds about one email address: the customer record, the
    subject's memberships here, the tickets they requested, the comments they wrote and the
    conversations on their tickets, messages sent to them, and the audit events about them."""

    subject: str
    workspace: ExportWorkspace
    generated_at: datetime
    customer: ExportCustomer | None
    memberships: list[ExportMembership]
    tickets: list[ExportTicket]
    comments: list[ExportComment]
    messages: list[ExportMessage]
    audit_events: list[AuditEventOut]


class ErasureOut(BaseModel):
    """Rows changed by this erasure (all zero on a repeat), and the audit events whose hashed
    fields mention the address and so could not be erased (normally zero)."""

    customers: int
    tickets: int
    comments: int
    messages: int
    audit_events: int
    unerasable_audit_events: int
