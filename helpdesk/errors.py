"""Exception handlers: every error leaves as API.md's JSON, never as a stack trace."""

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from helpdesk.core.errors import AppError, InvalidInput, RateLimited

log = logging.getLogger("helpdesk.errors")

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
    if isinstance(exc, RateLimited):
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


async def _unexpected_error(_: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return _json(
        500, "Something went wrong on our side; the request was not completed.", "internal_error"
    )


def install_error_handlers(app: FastAPI) -> None:
    # Starlette types handlers as taking any Exception; each is registered for its own class.
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected_error)
