"""alembic's ``op``, answered per thread, so several connections can run revisions at once.

A revision script calls ``op.add_column(...)``; alembic forwards that call to the one object
``Operations.context`` put in the ``alembic.op`` module, process-wide. Two threads migrating two
schemas through that one object run one schema's operations on the other's connection (measured
in this project: a duplicate column in one schema, a schema stamped at head without the column).
While ``per_thread_op()`` is in force, the object there forwards each call to the ``Operations``
(and so the connection) the calling thread bound with ``bound_op``.
"""

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import alembic.op
from alembic.operations import Operations


class _PerThreadOperations:
    def __init__(self) -> None:
        self._local = threading.local()
        self._install = threading.Lock()
        self._users = 0
        self._displaced: Any = None

    def __getattr__(self, name: str) -> Any:
        operations: Operations | None = getattr(self._local, "operations", None)
        if operations is None:
            raise RuntimeError(f"op.{name} called outside a tenant migration step")
        return getattr(operations, name)

    @contextmanager
    def bound(self, operations: Operations) -> Iterator[None]:
        self._local.operations = operations
        try:
            yield
        finally:
            self._local.operations = None

    @contextmanager
    def installed(self) -> Iterator[None]:
        # Fan-outs in one process may overlap (a test runs two at once): the first in installs
        # the forwarder, the last out puts back whatever was there before. The module's globals
        # are where alembic's own Operations.context installs its proxy: the generated ``op.*``
        # functions read ``_proxy`` from there on every call.
        proxy_slot = vars(alembic.op)
        with self._install:
            if self._users == 0:
                self._displaced = proxy_slot.get("_proxy")
                proxy_slot["_proxy"] = self
            self._users += 1
        try:
            yield
        finally:
            with self._install:
                self._users -= 1
                if self._users == 0:
                    proxy_slot["_proxy"] = self._displaced
                    self._displaced = None


_FORWARDER = _PerThreadOperations()


def per_thread_op() -> AbstractContextManager[None]:
    """Route alembic's ``op`` to each thread's own ``Operations`` (``bound_op``) for the block."""
    return _FORWARDER.installed()


def bound_op(operations: Operations) -> AbstractContextManager[None]:
    """``op`` in this thread means ``operations`` for the block (inside ``per_thread_op``)."""
    return _FORWARDER.bound(operations)
