"""Every mapped model, imported in one place so each track's metadata is complete."""

import audit.models
import auth.models
import helpdesk.customers.models
import helpdesk.idempotency.models
import helpdesk.outbox.models
import helpdesk.sla.models
import helpdesk.tickets.models
import helpdesk.webhooks.models
import tenants.models
from audit.schema_sql import TENANT_EXTRA_DDL
from helpdesk.core.models import PublicBase, TenantBase

__all__ = ["MODEL_MODULES", "PUBLIC_METADATA", "TENANT_EXTRA_DDL", "TENANT_METADATA"]

MODEL_MODULES = (
    audit.models,
    auth.models,
    helpdesk.customers.models,
    helpdesk.idempotency.models,
    helpdesk.outbox.models,
    helpdesk.sla.models,
    helpdesk.tickets.models,
    helpdesk.webhooks.models,
    tenants.models,
)
PUBLIC_METADATA = PublicBase.metadata
TENANT_METADATA = TenantBase.metadata
