"""Serve an ASGI app with uvicorn on loopback, in a background thread, for real concurrency.

The TestClient runs the app in the calling thread's portal, so concurrent requests through it
are not concurrent on the server; a real socket and a real event loop are.
"""

import asyncio
import socket
import threading
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import uvicorn
from fastapi import FastAPI

if TYPE_CHECKING:
    from helpdesk.core.settings import Settings

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0
CALL_TIMEOUT_SECONDS = 30.0

T = TypeVar("T")


class LiveServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    loop: asyncio.AbstractEventLoop

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the server's event loop, where the app's async engine and its
        pooled connections live, and return its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(CALL_TIMEOUT_SECONDS)


@contextmanager
def live_server(app: FastAPI, **options: Any) -> Iterator[LiveServer]:
    """Run ``app`` on 127.0.0.1 and an ephemeral port until the block ends; ``options`` are
    further ``uvicorn.Config`` arguments (``helpdesk serve``'s proxy options, for one)."""
    # Binding the socket here, not in uvicorn, tells us the port without parsing logs and
    # leaves no window in which another worker could take it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="on",
        # log_config=None keeps uvicorn from reconfiguring logging (pytest owns the handlers);
        # ws="none" avoids importing a websockets stack the app never uses.
        log_config=None,
        access_log=False,
        ws="none",
        http="h11",
        timeout_graceful_shutdown=5,
        **options,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []
    # The loop is ours rather than uvicorn's, so a test can run coroutines on it.
    loop = asyncio.new_event_loop()

    def run() -> None:
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's own thread
            failure.append(exc)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not server.started:
            if not thread.is_alive():
                raise LiveServerError(f"uvicorn stopped before serving: {failure!r}")
            if time.monotonic() > deadline:
                raise LiveServerError(f"uvicorn did not start within {START_TIMEOUT_SECONDS}s")
            time.sleep(0.01)
        yield LiveServer(base_url=f"http://127.0.0.1:{port}", loop=loop)
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        if thread.is_alive():
            server.force_exit = True
            thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()
    if thread.is_alive():
        raise LiveServerError("uvicorn did not stop")
    if failure:
        raise LiveServerError(f"uvicorn failed: {failure[0]!r}") from failure[0]


@contextmanager
def served_for_sign_in(settings: "Settings", database_url: str) -> Iterator[LiveServer]:
    """The app served with a roomy per-address sign-in allowance: every request to a served app
    comes from 127.0.0.1, so tests about accounts or identities would otherwise share, and
    exhaust, one address's count (the address's own throttle has tests with TestClients)."""
    from helpdesk.app import create_app
    from helpdesk.runtime import Runtime

    roomy = settings.model_copy(update={"login_attempts_per_address": 10_000})
    runtime = Runtime.connect(roomy, database_url)
    try:
        with live_server(create_app(runtime)) as server:
            yield server
    finally:
        runtime.engine.dispose()
