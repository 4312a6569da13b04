"""Figures for the console's dashboard: tickets opened and solved per day, first-response SLA
kept or missed per priority, and the open backlog by status, over what the caller may see.

"Solved" counts tickets now resolved or closed by the day they reached that status
(``status_changed_at``): the schema keeps no status history, so a ticket reopened and solved
again counts once, on its last day.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from auth.caller import Caller
from helpdesk.tickets.models import Ticket
from helpdesk.tickets.repository import Visibility, visible
from helpdesk.tickets.schemas import TicketPriority, TicketStatus
from helpdesk.tickets.service import visibility

SOLVED = (TicketStatus.RESOLVED.value, TicketStatus.CLOSED.value)
BACKLOG = (TicketStatus.OPEN, TicketStatus.IN_PROGRESS, TicketStatus.PENDING)


@dataclass(frozen=True, slots=True)
class SlaFigures:
    met: int
    missed: int

    @property
    def decided(self) -> int:
        return self.met + self.missed

    @property
    def percent(self) -> int | None:
        """Share kept, in whole percent; None while no ticket's target is decided."""
        return round(100 * self.met / self.decided) if self.decided else None


@dataclass(frozen=True, slots=True)
class Dashboard:
    days: list[date]
    opened: list[int]
    solved: list[int]
    sla: dict[TicketPriority, SlaFigures]
    backlog: dict[TicketStatus, int]


def _utc_day(column: Any) -> Any:
    return cast(func.timezone("UTC", column), Date)


def _seen(query: Any, who: Visibility) -> Any:
    # Typed loosely: ``visible`` is bound to one-column selects, these select several.
    return visible(query, who)


def _per_day(rows: Sequence[Any], days: list[date]) -> list[int]:
    counts = {row.day: row.n for row in rows}
    return [counts.get(day, 0) for day in days]


def dashboard(session: Session, caller: Caller, *, now: datetime, days: int = 30) -> Dashboard:
    """The last ``days`` UTC days, today included, over the tickets ``caller`` may see."""
    today = now.astimezone(UTC).date()
    span = [today - timedelta(days=n) for n in range(days - 1, -1, -1)]
    since = datetime.combine(span[0], datetime.min.time(), tzinfo=UTC)
    who = visibility(caller)

    opened_day = _utc_day(Ticket.created_at).label("day")
    opened = session.execute(
        _seen(
            select(opened_day, func.count().label("n"))
            .where(Ticket.created_at >= since)
            .group_by(opened_day),
            who,
        )
    ).all()
    solved_day = _utc_day(Ticket.status_changed_at).label("day")
    solved = session.execute(
        _seen(
            select(solved_day, func.count().label("n"))
            .where(Ticket.status.in_(SOLVED), Ticket.status_changed_at >= since)
            .group_by(solved_day),
            who,
        )
    ).all()

    # A first response in time keeps the target; a late one, or none by the due time, misses
    # it; a ticket still inside its target is not decided yet and counts for neither.
    met = and_(Ticket.first_response_at.is_not(None), Ticket.first_response_at <= Ticket.sla_due_at)
    missed = or_(
        Ticket.first_response_at > Ticket.sla_due_at,
        and_(Ticket.first_response_at.is_(None), Ticket.sla_due_at < now),
    )
    sla_rows = session.execute(
        _seen(
            select(
                Ticket.priority,
                func.count(case((met, 1))).label("met"),
                func.count(case((missed, 1))).label("missed"),
            )
            .where(Ticket.created_at >= since, Ticket.sla_due_at.is_not(None))
            .group_by(Ticket.priority),
            who,
        )
    ).all()
    sla = {p: SlaFigures(0, 0) for p in TicketPriority}
    for cell in sla_rows:
        sla[TicketPriority(cell.priority)] = SlaFigures(cell.met, cell.missed)

    backlog_rows = session.execute(
        _seen(
            select(Ticket.status, func.count().label("n"))
            .where(Ticket.status.in_([s.value for s in BACKLOG]))
            .group_by(Ticket.status),
            who,
        )
    ).all()
    backlog = dict.fromkeys(BACKLOG, 0)
    for row in backlog_rows:
        backlog[TicketStatus(row.status)] = row.n

    return Dashboard(
        days=span,
        opened=_per_day(opened, span),
        solved=_per_day(solved, span),
        sla=sla,
        backlog=backlog,
    )
