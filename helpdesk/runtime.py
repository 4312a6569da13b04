"""What a running app holds: settings, the engine and the session factory."""

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from auth.passwords import use_hash_profile
from helpdesk.core.db import make_engine, make_sessionmaker
from helpdesk.core.settings import Settings


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]

    @classmethod
    def connect(cls, settings: Settings, database_url: str) -> "Runtime":
        use_hash_profile(settings.password_hash_profile)
        engine = make_engine(database_url, settings)
        return cls(settings=settings, engine=engine, sessions=make_sessionmaker(engine))
