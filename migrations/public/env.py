"""Alembic environment for the public track. The caller passes an open connection in
``config.attributes["connection"]``; ``alembic`` on the command line uses ``DATABASE_URL``."""

from alembic import context
from sqlalchemy import Connection, create_engine

from migrations.models import PUBLIC_METADATA


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=PUBLIC_METADATA,
        version_table_schema="public",
        include_schemas=False,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from helpdesk.core.db import normalise_url
    from helpdesk.core.settings import get_settings

    url = get_settings().database_url
    if not url:
        raise SystemExit("set DATABASE_URL to run alembic directly, or use `helpdesk migrate`")
    with create_engine(normalise_url(url)).begin() as conn:
        _run(conn)
