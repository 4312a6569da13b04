"""Running both migration tracks: public first, then every tenant schema."""

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from migrations import PUBLIC_DIR
from tenants.locks import LockKey, lock_platform


def public_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(PUBLIC_DIR))
    return config


def upgrade_public(engine: Engine) -> None:
    config = public_config()
    with engine.begin() as connection:
        # Two processes starting at once (two `helpdesk serve`, a deploy) must not both migrate.
        lock_platform(connection, LockKey.MIGRATIONS)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def public_is_current(engine: Engine) -> bool:
    heads = set(ScriptDirectory.from_config(public_config()).get_heads())
    with engine.connect() as connection:
        current = set(
            MigrationContext.configure(
                connection, opts={"version_table_schema": "public"}
            ).get_current_heads()
        )
    return current == heads
