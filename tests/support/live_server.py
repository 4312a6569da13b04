"""Serve an ASGI app with uvicorn on loopback, in a background thread, for real concurrency.

The TestClient runs the app in the calling thread's portal, so concurrent requests through it
are not concurrent on the server; a real socket and a real event loop are.
"""

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 15.0


class LiveServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LiveServer:
    base_url: str


@contextmanager
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    """Run ``app`` on 127.0.0.1 and an ephemeral port until the block ends."""
    # Binding the socket here, not in uvicorn, tells us the port without parsing logs and
    # leaves no window in which another worker could take it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        lifespan="off",
        # log_config=None keeps uvicorn from reconfiguring logging (pytest owns the handlers);
        # ws="none" avoids importing a websockets stack the app never uses.
        log_config=None,
        access_log=False,
        ws="none",
        http="h11",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's own thread
            failure.append(exc)

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
        yield LiveServer(base_url=f"http://127.0.0.1:{port}")
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
