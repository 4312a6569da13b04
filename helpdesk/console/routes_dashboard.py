"""The dashboard: the last 30 days drawn as charts, over the tickets the caller may see."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from auth.permissions import Permission, TicketScope
from helpdesk.console import charts
from helpdesk.console.web import PREFIX, allow, page, redirect
from helpdesk.pipeline import AppRoute, Scope
from helpdesk.tickets import stats

router = APIRouter(route_class=AppRoute)

Reader = Annotated[Scope, Depends(allow(Permission.TICKETS_READ))]


@router.get("/dashboard")
async def dashboard(request: Request, scope: Reader) -> Response:
    if scope.caller.ticket_scope == TicketScope.OWN:
        return redirect(f"{PREFIX}/portal")
    figures = await scope.run(stats.dashboard, scope.caller, now=datetime.now(UTC))
    # Counts only, no person in them; audited as a ticket list read, which it summarises.
    await scope.audit("ticket.list", "ticket", changes={"dashboard": True})
    sla = [(p.value, f.decided, f.percent) for p, f in figures.sla.items()]
    return page(
        request,
        "dashboard.html",
        scope,
        title="Dashboard: the last 30 days",
        figures=figures,
        days=charts.day_chart(figures.days, figures.opened, figures.solved),
        sla_bars=charts.share_bars(sla),
        sla=figures.sla,
        backlog_bars=charts.count_bars([(s.value, n) for s, n in figures.backlog.items()]),
        opened_total=sum(figures.opened),
        solved_total=sum(figures.solved),
    )
