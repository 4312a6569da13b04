"""Finding the database: ``DATABASE_URL``, or in development an embedded server."""

from dataclasses import dataclass

from helpdesk.core.embedded import EmbeddedPostgres
from helpdesk.core.settings import Settings

EMBEDDED_DATABASE = "helpdesk"


@dataclass
class Database:
    url: str
    embedded: EmbeddedPostgres | None = None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()
            self.embedded = None


def open_database(settings: Settings) -> Database:
    settings.check_production()
    if settings.database_url:
        return Database(settings.database_url)
    server = EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    return Database(server.ensure_database(EMBEDDED_DATABASE), server)
