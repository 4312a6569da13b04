"""Who is acting: a signed-in workspace member or platform operator, as services see them.

It lives with auth, not with HTTP, so services and jobs can take a caller without importing
FastAPI or the request pipeline.
"""

import uuid
from dataclasses import dataclass

from auth.permissions import Permission, TicketScope
from tenants.context import TenantRef


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: uuid.UUID
    email: str
    name: str
    role: str
    permissions: frozenset[Permission]
    ticket_scope: TicketScope
    tenant: TenantRef | None

    @property
    def workspace(self) -> TenantRef:
        """The caller's workspace; tenant-scoped routes always have one."""
        if self.tenant is None:
            raise RuntimeError("a workspace-scoped service was called without a workspace")
        return self.tenant
