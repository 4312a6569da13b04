"""Service endpoints outside /api/v1: liveness, readiness and metrics."""

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import SQLAlchemyError

from helpdesk.errors import error_responses
from helpdesk.migrate import public_is_current
from helpdesk.pipeline import public
from helpdesk.runtime import RequestPath

router = APIRouter(tags=["service"])


@router.get("/healthz")
@public
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses=error_responses(503))
@public
async def readyz(request: Request) -> JSONResponse:
    path: RequestPath = request.app.state.request_path
    try:
        current = await path.off_loop(public_is_current, request.app.state.runtime.engine)
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


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text."}},
)
@public
async def metrics(request: Request) -> Response:
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
