"""The tenant track's scripts and its head revision."""

import os
from functools import lru_cache

from alembic.config import Config
from alembic.script import ScriptDirectory

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
