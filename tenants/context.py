"""The workspace a unit of work runs in; carried explicitly into jobs, never guessed."""

import uuid
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TenantRef:
    id: uuid.UUID
    slug: str
    name: str
    schema_name: str
    role_name: str
    status: str
