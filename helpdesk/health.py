"""Service endpoints outside /api/v1: liveness and readiness."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.migrate import public_is_current
from helpdesk.pipeline import public

router = APIRouter(tags=["service"])


@router.get("/healthz")
@public
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {}})
@public
def readyz(request: Request) -> JSONResponse:
    try:
        current = public_is_current(request.app.state.runtime.engine)
    except SQLAlchemyError:
        return JSONResponse(
            {"detail": "The database is unreachable.", "code": "database_unavailable"},
            status_code=503,
        )
    if not current:
        return JSONResponse(
            {
                "detail": "Database migrations are not at head; run `helpdesk migrate`.",
                "code": "migrations_pending",
            },
            status_code=503,
        )
    return JSONResponse({"status": "ready"})
