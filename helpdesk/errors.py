"""Exception handlers: every error leaves as API.md's JSON, never as a stack trace."""

import logging
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpdesk.core.admission import OVERLOADED_RETRY_AFTER_SECONDS
from helpdesk.core.errors import AppError, InvalidInput, RetryLater
from helpdesk.idempotency.service import IdempotentReplay

log = logging.getLogger("helpdesk.errors")

# Where the request middleware leaves the request id for the 500 handler: that handler runs in
# Starlette's outermost middleware, outside ours, so its response would otherwise go without one.
REQUEST_ID_STATE = "request_id"
# Set when a request failed because its database connection was lost: the read-retry
# middleware tries such a read once more on a fresh connection.
DATABASE_LOST_STATE = "database_lost"
# A restarted PostgreSQL accepts connections again within seconds.
DATABASE_RETRY_AFTER_SECONDS = 2


class ErrorBody(BaseModel):
    """API.md's error body."""

    detail: str = Field(description="A human sentence saying what went wrong.")
    code: str = Field(description="A stable snake_case code for programs to branch on.")


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the bad input is: its source, then the field.")
    msg: str
    type: str
    ctx: dict[str, Any] | None = None


class ValidationErrorBody(BaseModel):
    """FastAPI's list form (without each error's ``input``: see docs/DECISIONS.md)."""

    detail: list[FieldError]
    code: str | None = Field(
        default=None,
        description="Present when a rule rather than a type check refused the input "
        "(e.g. invalid_cursor).",
    )


_ERROR_DESCRIPTIONS = {
    400: "The body is not valid JSON (code `malformed_json`).",
    401: 'No bearer token, or a malformed, expired (the detail says "expired") or revoked one.',
    403: "Signed in but not allowed (the detail names the missing permission), or the workspace "
    "is suspended (code `tenant_suspended`).",
    404: "Not found in this workspace.",
    409: "Conflicts with what exists (a duplicate slug or email, a role in use, an illegal "
    "status change, ...).",
    413: "The body is larger than 1 MiB (code `payload_too_large`).",
    422: "Invalid input: each error's `loc` names the field.",
    429: "Too many attempts: wait the number of seconds in `Retry-After`.",
    503: "The service is overloaded (code `overloaded`) or the database is unreachable (code "
    "`database_unavailable`): retry after the seconds in `Retry-After`.",
}


def error_responses(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI entries for the errors a route can answer, each with its body's schema, so
    /openapi.json describes them as API.md does (tests/e2e/test_contract.py checks every
    route). ``described`` replaces the usual description where a route means something more
    particular by a status."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        entry: dict[str, Any] = {
            "model": ValidationErrorBody if status == 422 else ErrorBody,
            "description": (described or {}).get(status, _ERROR_DESCRIPTIONS[status]),
        }
        if status in (429, 503):
            entry["headers"] = {
                "Retry-After": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer"},
                }
            }
        responses[status] = entry
    return responses


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def _json(status: int, detail: str, code: str) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code}, status_code=status)


async def _app_error(_: Request, exc: AppError) -> Response:
    if isinstance(exc, InvalidInput):
        error = {"loc": exc.loc, "msg": exc.detail, "type": exc.code}
        return JSONResponse({"detail": [error], "code": exc.code}, status_code=422)
    response = _json(exc.status_code, exc.detail, exc.code)
    if isinstance(exc, RetryLater):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


async def _validation_error(_: Request, exc: RequestValidationError) -> Response:
    if any(error.get("type") == "json_invalid" for error in exc.errors()):
        return _json(400, "The request body is not valid JSON.", "malformed_json")
    # FastAPI's list form, without each error's "input": echoing what was sent would put a
    # rejected password or webhook secret into the response, and into any log that keeps it.
    errors = [{key: value for key, value in e.items() if key != "input"} for e in exc.errors()]
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _http_error(_: Request, exc: StarletteHTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else "The request failed."
    response = _json(exc.status_code, detail, _STATUS_CODES.get(exc.status_code, "error"))
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    response = _json(
        500, "Something went wrong on our side; the request was not completed.", "internal_error"
    )
    request_id = request.scope.get("state", {}).get(REQUEST_ID_STATE)
    if request_id:
        response.headers["X-Request-ID"] = request_id
    return response


def is_connection_failure(exc: DBAPIError) -> bool:
    """The connection broke or could not be made (PostgreSQL down, restarting, a terminated
    backend): the request did not complete, and trying again later can succeed."""
    return bool(exc.connection_invalidated) or isinstance(exc.orig, psycopg.OperationalError)


async def _database_error(request: Request, exc: DBAPIError) -> Response:
    if not is_connection_failure(exc):
        # A bug or a refused statement, not an outage: the outermost handler makes it a 500.
        raise exc
    # The class name only: the message can quote SQL or a server address.
    log.warning("database unavailable: %s", type(exc.orig).__name__)
    request.scope.setdefault("state", {})[DATABASE_LOST_STATE] = True
    response = _json(
        503,
        "The database is unreachable; the request was not completed. "
        f"Retry after {DATABASE_RETRY_AFTER_SECONDS} s.",
        "database_unavailable",
    )
    response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    return response


async def _pool_timeout(_: Request, exc: PoolTimeout) -> Response:
    # Admission control bounds the wait before the pool is asked; this is its backstop.
    response = _json(
        503, "The service is busy: no database connection came free in time.", "overloaded"
    )
    response.headers["Retry-After"] = str(OVERLOADED_RETRY_AFTER_SECONDS)
    return response


async def _replay(_: Request, replay: IdempotentReplay) -> Response:
    """The first result of a request retried with the same Idempotency-Key."""
    headers = {"Idempotency-Replayed": "true"}
    result = replay.result
    if result.body is None:
        return Response(status_code=result.status_code, headers=headers)
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each is registered for its own class.
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(DBAPIError, _database_error)  # type: ignore[arg-type]
    app.add_exception_handler(PoolTimeout, _pool_timeout)  # type: ignore[arg-type]
    app.add_exception_handler(IdempotentReplay, _replay)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
