"""Streamed downloads read in a transaction of their own: a workspace's read-only snapshot, and
a response that pumps a blocking chunk iterator and closes it however the download ends.

A download outlives its request's transaction (that one commits the request's audit event
before the first byte is sent), so its rows are read in a second transaction, one chunk at a
time, from the thread pool.
"""

from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from fastapi.responses import StreamingResponse
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Send
from starlette.types import Scope as AsgiScope

from helpdesk.core.db import set_tenant_scope, transaction
from tenants.context import TenantRef


@contextmanager
def tenant_snapshot(sessions: sessionmaker[Session], tenant: TenantRef) -> Iterator[Session]:
    """A read-only transaction with one snapshot for all its statements: a purge committing
    meanwhile cannot give the file a chain start its first row does not link to, and a file
    read in batches never sees a row twice or half a change."""
    with transaction(sessions) as session:
        # Must come first: the isolation level is fixed by the transaction's first query.
        session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        set_tenant_scope(session, tenant.schema_name, tenant.role_name)
        yield session


class ClosingStream(StreamingResponse):
    """Streams a blocking chunk iterator from the thread pool, and closes it however the download
    ends (finished, failed, or the client gone), so its transaction and cursor end with it."""

    def __init__(self, chunks: Generator[bytes, None, None], **kwargs: Any) -> None:
        self._chunks = chunks
        super().__init__(self._pump(), **kwargs)

    async def _pump(self) -> AsyncIterator[bytes]:
        while (chunk := await run_in_threadpool(next, self._chunks, None)) is not None:
            yield chunk

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(self._chunks.close)
