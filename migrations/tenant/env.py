"""Alembic environment for the tenant track, for ``alembic revision --autogenerate`` against a
scratch schema (``-x schema=NAME``). Upgrading real tenants goes through
``tenants.migrations``, which drives the same scripts without this file."""

from alembic import context
from sqlalchemy import create_engine, text

from migrations.models import TENANT_METADATA

schema = context.get_x_argument(as_dictionary=True).get("schema")
if not schema:
    raise SystemExit("pass -x schema=<tenant schema>")

from helpdesk.core.db import normalise_url  # noqa: E402
from helpdesk.core.settings import get_settings  # noqa: E402

url = get_settings().database_url
if not url:
    raise SystemExit("set DATABASE_URL to run alembic directly")
with create_engine(normalise_url(url)).begin() as conn:
    conn.execute(text("SELECT set_config('search_path', quote_ident(:s), true)"), {"s": schema})
    context.configure(connection=conn, target_metadata=TENANT_METADATA, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()
