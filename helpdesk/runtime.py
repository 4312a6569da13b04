"""What a running app holds: settings and the synchronous engine (jobs, CLI, credential
routes), and, per event loop, the request path's async engine and admission control."""

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from sqlalchemy import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session, sessionmaker

from auth.passwords import hash_password, use_hash_profile
from auth.verified_tokens import VerifiedTokens
from helpdesk.core.admission import Admission, RateLimiter
from helpdesk.core.db import (
    make_async_engine,
    make_async_sessionmaker,
    make_engine,
    make_sessionmaker,
)
from helpdesk.core.settings import Settings

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    # The service role's: requests, jobs and commands run as it (README "Database roles").
    database_url: str
    engine: Engine
    sessions: sessionmaker[Session]
    # The owner role's, for migrations only; None: the service's URL migrates too.
    owner_database_url: str | None = None

    @classmethod
    def connect(
        cls, settings: Settings, database_url: str, owner_database_url: str | None = None
    ) -> "Runtime":
        use_hash_profile(settings.password_hash_profile)
        engine = make_engine(database_url, settings)
        return cls(
            settings=settings,
            database_url=database_url,
            engine=engine,
            sessions=make_sessionmaker(engine),
            owner_database_url=owner_database_url,
        )

    def owner_engine(self) -> Engine:
        """A new engine logged in as the owner, for a migration; the caller disposes of it."""
        return make_engine(self.owner_database_url or self.database_url, self.settings)


@dataclass(frozen=True, slots=True)
class RequestPath:
    """The request path's resources. They belong to one event loop (asyncio primitives and
    async connections cannot cross loops), so the app opens them in its lifespan."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    admission: Admission
    rate_limiter: RateLimiter
    # argon2 and the sign-in routes' transactions run here, a bounded number at a time.
    credentials: ThreadPoolExecutor
    tokens: VerifiedTokens

    @classmethod
    def open(cls, runtime: Runtime) -> "RequestPath":
        settings = runtime.settings
        engine = make_async_engine(runtime.database_url, settings)
        return cls(
            engine=engine,
            sessions=make_async_sessionmaker(engine),
            admission=Admission(
                capacity=settings.pool_size + settings.pool_max_overflow,
                share=settings.workspace_pool_share,
                wait_seconds=settings.pool_wait_seconds,
            ),
            rate_limiter=RateLimiter(
                rate=settings.workspace_rate_per_second, burst=settings.workspace_rate_burst
            ),
            credentials=ThreadPoolExecutor(
                max_workers=settings.credential_workers, thread_name_prefix="credentials"
            ),
            tokens=VerifiedTokens(settings),
        )

    async def off_loop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking or CPU-bound ``fn`` on the credentials executor; the request's context
        (its id and client address, which audit events record) goes with it."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self.credentials, call)

    async def hash_password(self, password: str) -> str:
        return await self.off_loop(hash_password, password)

    async def close(self) -> None:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: self.credentials.shutdown(wait=True)
        )
        await self.engine.dispose()
