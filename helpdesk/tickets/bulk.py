"""Bulk ticket changes: one change (status, priority, assignee, tags) applied to many tickets in
the request's one transaction, all or nothing.

Every ticket goes through ``change_tickets``, the path a single PATCH takes, so each changed
ticket gets its ``ticket.updated`` webhook event and e-mails as a single change would; the
request records one audit event listing every id and what changed on each. Nothing is written
until every ticket has passed: one the caller cannot see (404) or whose workflow refuses the
change (409) leaves all of them as they were, and the error names the ids.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from auth.caller import Caller
from auth.permissions import Permission
from helpdesk.core.errors import Conflict, Forbidden, NotFound
from helpdesk.tickets import repository
from helpdesk.tickets.schemas import BulkIn, BulkOut, TicketStatus
from helpdesk.tickets.service import (
    TicketChange,
    change_tickets,
    check_assignee,
    check_change,
    visibility,
)


@dataclass(frozen=True, slots=True)
class BulkOutcome:
    """The change asked for (JSON form) and each ticket's result, in id order."""

    change: dict[str, Any]
    results: list[TicketChange]

    def out(self) -> BulkOut:
        return BulkOut(
            changed=[r.view.ticket.id for r in self.results if r.diff],
            unchanged=[r.view.ticket.id for r in self.results if not r.diff],
        )

    def audit_changes(self) -> dict[str, Any]:
        """The request's one audit event: every id, the change, and each ticket's diff."""
        return {
            "ids": [r.view.ticket.id for r in self.results],
            "change": self.change,
            "tickets": {str(r.view.ticket.id): r.diff for r in self.results if r.diff},
        }


def _listed(ids: list[int]) -> str:
    return ", ".join(str(i) for i in ids)


def apply_bulk_change(session: Session, caller: Caller, request: BulkIn) -> BulkOutcome:
    # Bulk multiplies a single change: it needs what a single change needs, beyond tickets.bulk.
    if Permission.TICKETS_UPDATE not in caller.permissions:
        raise Forbidden(
            "You lack the permission 'tickets.update' that changing tickets needs.",
            permission=Permission.TICKETS_UPDATE.value,
        )
    change = request.change.model_dump(mode="json", exclude_unset=True)
    if "assignee_id" in change:
        check_assignee(session, caller, request.change.assignee_id)
    tickets = repository.lock_visible(session, request.ids, visibility(caller))
    missing = sorted(set(request.ids) - {t.id for t in tickets})
    if missing:
        raise NotFound(
            f"No ticket {_listed(missing)} in this workspace; no ticket was changed.",
            code="tickets_not_found",
        )
    refused: list[str] = []
    for ticket in tickets:
        try:
            check_change(TicketStatus(ticket.status), change)
        except Conflict as refusal:
            refused.append(f"#{ticket.id}: {refusal.detail}")
    if refused:
        raise Conflict(
            f"The change is refused for {len(refused)} ticket(s); no ticket was changed. "
            + " ".join(refused),
            code="bulk_change_refused",
        )
    results = change_tickets(session, [(t, change) for t in tickets], audit_as=None)
    return BulkOutcome(change, results)
