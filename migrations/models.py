"""Every mapped model, imported in one place so each track's metadata is complete, and the
DDL that builds a tenant schema at head in one go from it."""

from functools import lru_cache

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

import audit.models
import auth.models
import helpdesk.console.models
import helpdesk.customers.models
import helpdesk.idempotency.models
import helpdesk.outbox.models
import helpdesk.sla.models
import helpdesk.tickets.models
import helpdesk.webhooks.models
import tenants.models
from audit.schema_sql import TENANT_EXTRA_DDL
from helpdesk.core.models import PublicBase, TenantBase
from tenants.schema import VERSION_TABLE_DDL

__all__ = [
    "MODEL_MODULES",
    "PUBLIC_METADATA",
    "TENANT_EXTRA_DDL",
    "TENANT_METADATA",
    "tenant_ddl",
]

MODEL_MODULES = (
    audit.models,
    auth.models,
    helpdesk.console.models,
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


@lru_cache(maxsize=1)
def tenant_ddl() -> str:
    """Every tenant table and index at head, unqualified so ``search_path`` places them.

    Compiled once per process from the models; a test proves it equals what the migrations build.
    It lives here, above every package, because it needs all their models: provisioning (in
    ``tenants``, the lowest layer) is handed it rather than importing upwards.
    """
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = []
    for table in TENANT_METADATA.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    statements.extend(sql.strip() for sql in TENANT_EXTRA_DDL)
    statements.append(VERSION_TABLE_DDL)
    return ";\n".join(statements)
