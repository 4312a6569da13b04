"""The tenant track's scripts and the DDL that builds a tenant schema at head in one go."""

import os
from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from migrations import TENANT_DIR

VERSION_TABLE_DDL = (
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
    "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"
)


def tenant_config(*extra_locations: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(TENANT_DIR))
    locations = [str(TENANT_DIR / "versions"), *extra_locations]
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", os.pathsep.join(locations))
    return config


@lru_cache(maxsize=4)
def tenant_script(*extra_locations: str) -> ScriptDirectory:
    return ScriptDirectory.from_config(tenant_config(*extra_locations))


@lru_cache(maxsize=1)
def tenant_head() -> str:
    head = tenant_script().get_current_head()
    if head is None:
        raise RuntimeError("the tenant migration track has no revisions")
    return head


@lru_cache(maxsize=1)
def tenant_ddl() -> str:
    """Every tenant table and index at head, unqualified so ``search_path`` places them.

    Compiled once per process from the models; a test proves it equals what the migrations build.
    """
    # Imported here: ``migrations.models`` pulls in every package's models, and the registry
    # must not import the packages above it at module load.
    from migrations.models import TENANT_EXTRA_DDL, TENANT_METADATA

    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements = []
    for table in TENANT_METADATA.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    statements.extend(sql.strip() for sql in TENANT_EXTRA_DDL)
    statements.append(VERSION_TABLE_DDL)
    return ";\n".join(statements)
