"""ASGI middleware: request id, client address, one structured log line and the request
metrics, body-size limit; one transparent retry of a read whose database connection was lost."""

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpdesk.core.request_context import RequestInfo, current_request, route_template
from helpdesk.errors import DATABASE_LOST_STATE, REQUEST_ID_STATE
from helpdesk.metrics import Metrics

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")

access_log = logging.getLogger("helpdesk.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _usable_request_id(value: str | None) -> str:
    # An echoed id lands in logs and audit rows: accept only a short, plain token.
    if value and len(value) <= 64 and set(value) <= _REQUEST_ID_OK:
        return value
    return uuid.uuid4().hex


class _BodyTooLarge(Exception):
    pass


def _error_body(detail: str, code: str) -> bytes:
    return json.dumps({"detail": detail, "code": code}).encode()


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _usable_request_id(_header(scope, b"x-request-id"))
        # Per request (the server copies "state" for each one); read by the 500 handler.
        scope.setdefault("state", {})[REQUEST_ID_STATE] = request_id
        client = scope.get("client")
        info = RequestInfo(
            request_id=request_id,
            ip=client[0] if client else None,
            user_agent=(_header(scope, b"user-agent") or "")[:400] or None,
        )
        token = current_request.set(info)
        started = time.perf_counter()
        status = 500
        received = 0

        declared = _header(scope, b"content-length")
        if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            await self._too_large(send, request_id)
            self._finish(scope, info, 413, started)
            current_request.reset(token)
            return

        too_large = False
        responded = False

        async def limited_receive() -> Message:
            nonlocal received, too_large
            if too_large:
                raise _BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    too_large = True
                    raise _BodyTooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if too_large and not responded:
                # The app's own answer to a body it could not finish reading: FastAPI turns
                # any error while reading into a 400, so the 413 below replaces it.
                return
            if message["type"] == "http.response.start":
                responded = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, limited_receive, send_with_id)
        except _BodyTooLarge:
            # Reached here when nothing between this middleware and the read caught it.
            pass
        finally:
            if too_large and not responded:
                status = 413
                await self._too_large(send, request_id)
            self._finish(scope, info, status, started)
            current_request.reset(token)

    @staticmethod
    async def _too_large(send: Send, request_id: str) -> None:
        body = _error_body("The request body is larger than 1 MiB.", "payload_too_large")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope: Scope, info: RequestInfo, status: int, started: float) -> None:
        seconds = time.perf_counter() - started
        self.metrics.observe(scope.get("method", ""), route_template(scope), status, seconds)
        record: dict[str, Any] = {
            "event": "request",
            "request_id": info.request_id,
            "method": scope.get("method"),
            **_where(scope),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": info.ip,
        }
        access_log.info(json.dumps(record))


def _where(scope: Scope) -> dict[str, Any]:
    # The route template, not the path: a path can name a person. An unmatched path names no
    # resource of ours and is kept, so a client's typo can still be found.
    template = route_template(scope)
    return {"route": template} if template is not None else {"path": scope.get("path")}


_SAFE_METHODS = frozenset({"GET", "HEAD"})


class ReadRetryMiddleware:
    """A read whose connection was lost (a restarted server, a terminated backend) is tried
    once more on a fresh connection before the client sees 503 ``database_unavailable``.

    Only reads: their transaction rolled back with the connection, so nothing was done, and
    they carry no body to replay. A write is never repeated here; clients retry it with an
    ``Idempotency-Key``. The failed attempt's response is held back only when it is that 503.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in _SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_lost(message: Message) -> None:
            if held or (message["type"] == "http.response.start" and _lost(scope, message)):
                held.append(message)
            else:
                await send(message)

        await self.app(scope, receive, hold_lost)
        if not held:
            return
        scope["state"].pop(DATABASE_LOST_STATE, None)
        await self.app(scope, receive, send)


def _lost(scope: Scope, start: Message) -> bool:
    return start["status"] == 503 and bool(scope.get("state", {}).get(DATABASE_LOST_STATE))
