"""Ticket rules: intake, the status workflow, assignment, SLA and notifications, and the one
change path (``change_tickets``) that a person's PATCH and the jobs share."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from pydantic import TypeAdapter
from sqlalchemy import select
from sqlalchemy.orm import Session

from audit.gdpr import ERASED, REDACTED, Subject
from audit.retention import PurgedTickets
from audit.trail import Actor, record_event
from auth.caller import Caller
from auth.permissions import Permission, TicketScope
from auth.users import address_of, addresses_holding
from helpdesk.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from helpdesk.customers import repository as customers
from helpdesk.customers.models import Customer
from helpdesk.customers.schemas import CustomerRef
from helpdesk.customers.service import customer_for_email
from helpdesk.outbox.service import publish_event, queue_email
from helpdesk.sla import state as sla_state
from helpdesk.sla.policy import targets
from helpdesk.sla.service import due_after, load_settings
from helpdesk.tickets import repository
from helpdesk.tickets.assignment import (
    Worker,
    auto_assigns,
    may_work_tickets,
    route_ticket,
    ticket_workers,
)
from helpdesk.tickets.models import Ticket
from helpdesk.tickets.repository import Visibility
from helpdesk.tickets.schemas import (
    TicketFilters,
    TicketIn,
    TicketOut,
    TicketPatch,
    TicketPriority,
    TicketStatus,
)

S = TicketStatus
# A closed ticket is finished: it can only be reopened, never edited in place.
ALLOWED_MOVES: dict[TicketStatus, frozenset[TicketStatus]] = {
    S.OPEN: frozenset({S.IN_PROGRESS, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.IN_PROGRESS: frozenset({S.OPEN, S.PENDING, S.RESOLVED, S.CLOSED}),
    S.PENDING: frozenset({S.OPEN, S.IN_PROGRESS, S.RESOLVED, S.CLOSED}),
    S.RESOLVED: frozenset({S.OPEN, S.IN_PROGRESS, S.CLOSED}),
    S.CLOSED: frozenset({S.OPEN}),
}


@dataclass(frozen=True, slots=True)
class TicketView:
    ticket: Ticket
    customer: Customer | None
    tags: list[str]

    def out(self, now: datetime | None = None) -> TicketOut:
        t = self.ticket
        now = now or datetime.now(UTC)
        return TicketOut(
            id=t.id,
            title=t.title,
            description=t.description,
            status=TicketStatus(t.status),
            priority=TicketPriority(t.priority),
            category=t.category,
            tags=self.tags,
            customer=CustomerRef.model_validate(self.customer) if self.customer else None,
            assignee_id=t.assignee_id,
            sla_due_at=t.sla_due_at,
            sla_breached=sla_state.sla_breached(t, now),
            resolution_due_at=t.resolution_due_at,
            resolution_breached=sla_state.resolution_breached(t, now),
            escalated=t.escalated,
            created_at=t.created_at,
            updated_at=t.updated_at,
        )


def visibility(caller: Caller) -> Visibility:
    return Visibility(scope=caller.ticket_scope, user_id=caller.user_id, email=caller.email)


def views(session: Session, tickets: Sequence[Ticket]) -> list[TicketView]:
    ids = [t.id for t in tickets]
    tags = repository.tags_for(session, ids)
    people = customers.by_ids(session, {t.customer_id for t in tickets if t.customer_id})
    return [
        TicketView(t, people.get(t.customer_id) if t.customer_id else None, tags[t.id])
        for t in tickets
    ]


def find_visible(session: Session, caller: Caller, ticket_id: int, *, lock: bool = False) -> Ticket:
    ticket = repository.get_visible(session, ticket_id, visibility(caller), lock=lock)
    if ticket is None:
        raise NotFound(f"No ticket {ticket_id} in this workspace.", code="ticket_not_found")
    return ticket


def _event_payload(view: TicketView, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {"ticket": view.out().model_dump(mode="json")}
    if changes is not None:
        payload["changes"] = changes
    return payload


def _notify_assignee(session: Session, ticket: Ticket) -> None:
    email = address_of(session, ticket.assignee_id) if ticket.assignee_id else None
    if email:
        queue_email(
            session,
            event="ticket.assigned",
            to=email,
            subject=f"[#{ticket.id}] assigned to you: {ticket.title}",
            body=f"Ticket #{ticket.id} ({ticket.priority}) is now assigned to you.",
        )


def create_ticket(session: Session, caller: Caller, data: TicketIn) -> TicketView:
    name: str | None
    if caller.ticket_scope == TicketScope.OWN:
        email, name = caller.email, caller.name
    elif data.customer_email is None:
        raise InvalidInput(
            "Name the customer who asked: customer_email is required.",
            code="customer_required",
            field="customer_email",
        )
    else:
        email, name = str(data.customer_email), data.customer_name
    customer = customer_for_email(session, email, name)
    settings = load_settings(session)
    now = datetime.now(UTC)
    goals = targets(settings, customer.tier, data.priority.value)
    ticket = Ticket(
        title=data.title,
        description=data.description,
        priority=data.priority.value,
        category=data.category,
        customer_id=customer.id,
        sla_due_at=due_after(now, goals.first_response, settings),
        resolution_due_at=due_after(now, goals.resolution, settings),
        status_changed_at=now,
        created_at=now,
        updated_at=now,
    )
    if auto_assigns(settings, ticket.priority) and caller.tenant is not None:
        ticket.assignee_id = route_ticket(
            session, caller.tenant.id, category=ticket.category, priority=ticket.priority
        )
    session.add(ticket)
    # The mapper's eager defaults load what PostgreSQL filled in within the INSERT itself.
    session.flush()
    # A new ticket has no tags to replace.
    repository.add_tags(session, ticket.id, data.tags)
    view = TicketView(ticket, customer, data.tags)
    publish_event(session, "ticket.created", _event_payload(view))
    queue_email(
        session,
        event="ticket.created",
        to=customer.email,
        subject=f"[#{ticket.id}] We received your request: {ticket.title}",
        body=(
            f"Your ticket #{ticket.id} is open; we will answer by "
            f"{ticket.sla_due_at:%Y-%m-%d %H:%M} UTC."
        ),
    )
    if ticket.assignee_id:
        _notify_assignee(session, ticket)
    return view


def get_ticket(session: Session, caller: Caller, ticket_id: int) -> TicketView:
    return views(session, [find_visible(session, caller, ticket_id)])[0]


async def list_tickets(
    connection: psycopg.AsyncConnection[Any],
    caller: Caller,
    filters: TicketFilters,
    *,
    after_id: int | None,
    limit: int,
) -> list[TicketOut]:
    """A page of the tickets ``caller`` may see, on the request's psycopg connection
    (repository.list_page)."""
    rows = await repository.list_page(
        connection,
        visibility(caller),
        filters,
        after_id=after_id,
        limit=limit,
        now=datetime.now(UTC),
    )
    # Validated as one list in pydantic's core, from plain dicts: a third of the time of
    # building each TicketOut and its CustomerRef in Python.
    return _TICKET_LIST.validate_python([_page_item(row) for row in rows])


_TICKET_LIST = TypeAdapter(list[TicketOut])


def _page_item(item: dict[str, Any]) -> dict[str, Any]:
    item["tags"] = item["tags"] or []
    customer_id = item["customer_id"]
    item["customer"] = (
        None
        if customer_id is None
        else {"id": customer_id, "email": item["customer_email"], "name": item["customer_name"]}
    )
    return item


QueuePosition = tuple[int, datetime, int]


def work_queue(
    session: Session, caller: Caller, *, after: QueuePosition | None, limit: int
) -> list[tuple[TicketView, QueuePosition]]:
    """The caller's workable tickets, urgent first, then by first-response due time, then id;
    each with its queue position, which the next page starts after."""
    rows = repository.queue(session, visibility(caller), after=after, limit=limit)
    shown = views(session, [ticket for ticket, _ in rows])
    return list(zip(shown, [position for _, position in rows], strict=True))


async def list_mine(
    connection: psycopg.AsyncConnection[Any],
    caller: Caller,
    *,
    after_id: int | None,
    limit: int,
) -> list[TicketOut]:
    """Tickets assigned to the caller; for a customer, the tickets they requested."""
    filters = TicketFilters()
    if caller.ticket_scope != TicketScope.OWN:
        filters = TicketFilters(assignee_id=caller.user_id)
    return await list_tickets(connection, caller, filters, after_id=after_id, limit=limit)


def update_ticket(
    session: Session, caller: Caller, ticket_id: int, patch: TicketPatch
) -> tuple[TicketView, dict[str, Any]]:
    """A person's change (PATCH /tickets/{id}). The request pipeline records the request's one
    audit event from the returned diff."""
    ticket = find_visible(session, caller, ticket_id, lock=True)
    changes = patch.model_dump(mode="json", exclude_unset=True)
    # change_tickets checks the workflow again; checking it first here makes a closed ticket or
    # an illegal move a 409 before the assign permission is looked at, whatever the body holds.
    check_change(TicketStatus(ticket.status), changes)
    if "assignee_id" in changes:
        check_assignee(session, caller, patch.assignee_id)
    (change,) = change_tickets(session, [(ticket, changes)], audit_as=None)
    return change.view, change.diff


@dataclass(frozen=True, slots=True)
class TicketChange:
    """One ticket after a change, and what changed: ``{field: {before, after}}``."""

    view: TicketView
    diff: dict[str, Any]


# What a change may set. Columns the workflow keeps (status_changed_at, updated_at, the first
# response) are set by the rules, never asked for.
CHANGEABLE = frozenset(
    {
        "title",
        "description",
        "status",
        "priority",
        "category",
        "tags",
        "assignee_id",
        "escalated",
        "sla_breached",
    }
)
# Fields that always hold a value: a null in a change means "leave as is".
_NEVER_NULL = frozenset(
    {"title", "description", "status", "priority", "tags", "escalated", "sla_breached"}
)


def check_change(current: TicketStatus, changes: Mapping[str, Any]) -> None:
    """The workflow every change obeys, whoever makes it: a closed ticket can only be reopened
    (a change that names any other field is refused), and a status moves only along
    ``ALLOWED_MOVES``. Raises Conflict; a pure rule, so it is tested as a table."""
    if current == S.CLOSED and set(changes) - {"status"}:
        raise Conflict("A closed ticket cannot be edited; reopen it first.", code="ticket_closed")
    target = changes.get("status")
    if (
        target is not None
        and target != current
        and TicketStatus(target) not in ALLOWED_MOVES[current]
    ):
        raise Conflict(
            f"A ticket cannot move from {current.value!r} to {TicketStatus(target).value!r}.",
            code="illegal_status_change",
        )


def change_tickets(
    session: Session,
    edits: Sequence[tuple[Ticket, Mapping[str, Any]]],
    *,
    audit_as: Actor | None,
    now: datetime | None = None,
) -> list[TicketChange]:
    """The one way a ticket changes, whether a person or a job asks: the workflow check, the
    diff, ``status_changed_at`` and ``updated_at``, the ``ticket.updated`` webhook event, the
    e-mails a change sends (resolved, newly assigned), and the audit event.

    ``edits`` pairs each ticket, already locked by the caller (``FOR UPDATE``), with the values
    to set, in their JSON form (``CHANGEABLE`` fields). Every edit is checked before anything is
    written, so a refused edit leaves the whole batch unwritten. ``audit_as`` is the actor a job
    records each changed ticket's ``ticket.update`` event as (``Actor.system(job)``); ``None``
    when the request pipeline records the request's one event itself, from the returned diff.
    Returns one TicketChange per edit, in order; an empty diff means nothing changed.
    """
    for ticket, changes in edits:
        unknown = set(changes) - CHANGEABLE
        if unknown:
            raise ValueError(f"not changeable ticket fields: {sorted(unknown)}")
        check_change(TicketStatus(ticket.status), changes)
    now = now or datetime.now(UTC)
    diffs: list[dict[str, Any]] = []
    settings = None
    for ticket, changes in edits:
        diff = _apply(session, ticket, changes)
        if "status" in diff:
            ticket.status_changed_at = now
            settings = settings or load_settings(session)
            sla_state.on_status_change(
                ticket, diff["status"]["before"], diff["status"]["after"], now, settings
            )
        if diff:
            ticket.updated_at = now
        diffs.append(diff)
    session.flush()
    changed = [
        TicketChange(view, diff)
        for view, diff in zip(views(session, [t for t, _ in edits]), diffs, strict=True)
    ]
    for change in changed:
        if change.diff:
            _announce(session, change)
    if audit_as is not None:
        # Audit last: the first append takes the workspace's chain lock, which every audited
        # request also needs, and holds it to commit; this keeps that stretch short.
        for change in changed:
            if change.diff:
                record_event(
                    session,
                    actor=audit_as,
                    action="ticket.update",
                    target_type="ticket",
                    target_id=change.view.ticket.id,
                    changes=change.diff,
                )
    return changed


def _announce(session: Session, change: TicketChange) -> None:
    """What a change tells the outside world, through the outbox (sent after commit)."""
    view, diff = change.view, change.diff
    ticket = view.ticket
    publish_event(session, "ticket.updated", _event_payload(view, diff))
    if diff.get("status", {}).get("after") == S.RESOLVED and view.customer is not None:
        queue_email(
            session,
            event="ticket.resolved",
            to=view.customer.email,
            subject=f"[#{ticket.id}] Resolved: {ticket.title}",
            body=f"Your ticket #{ticket.id} was marked resolved. Reply to reopen it.",
        )
    if "assignee_id" in diff and ticket.assignee_id is not None:
        _notify_assignee(session, ticket)


def alert_breaches(session: Session, *, now: datetime, after_id: int, limit: int) -> list[int]:
    """Alert each ticket that has breached its first-response target and was not alerted yet,
    once: a ``ticket.sla_breached`` webhook event, and an e-mail to every member whose role
    holds ``sla.alerts``. Returns the ids alerted, in order (the next batch starts after)."""
    due = session.scalars(
        select(Ticket)
        .where(
            Ticket.id > after_id,
            Ticket.sla_alerted_at.is_(None),
            sla_state.sla_breached_sql(now),
        )
        .order_by(Ticket.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return []
    leads = addresses_holding(session, Permission.SLA_ALERTS)
    for view in views(session, due):
        ticket = view.ticket
        ticket.sla_alerted_at = now
        publish_event(session, "ticket.sla_breached", _event_payload(view))
        for address in leads:
            queue_email(
                session,
                event="ticket.sla_breached",
                to=address,
                subject=f"[#{ticket.id}] SLA breached ({ticket.priority}): {ticket.title}",
                body=(
                    f"Ticket #{ticket.id} had no first response by "
                    f"{ticket.sla_due_at:%Y-%m-%d %H:%M} UTC."
                ),
            )
    session.flush()
    return [t.id for t in due]


def _json_form(value: Any) -> Any:
    """A column's value as a change carries it: UUIDs as strings, the rest as stored."""
    return str(value) if isinstance(value, uuid.UUID) else value


def _apply(session: Session, ticket: Ticket, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Set the changed fields; return {field: {before, after}} for those that really changed."""
    diff: dict[str, Any] = {}
    for field, value in changes.items():
        if value is None and field in _NEVER_NULL:
            continue
        if field == "tags":
            old_tags = repository.tags_for(session, [ticket.id])[ticket.id]
            if value != old_tags:
                repository.replace_tags(session, ticket.id, value)
                diff["tags"] = {"before": old_tags, "after": value}
            continue
        before = _json_form(getattr(ticket, field))
        if before != value:
            setattr(ticket, field, value)
            diff[field] = {"before": before, "after": value}
    return diff


def check_assignee(session: Session, caller: Caller, assignee_id: uuid.UUID | None) -> None:
    """May ``caller`` assign tickets to ``assignee_id`` (None: unassign)? Raises if not."""
    if Permission.TICKETS_ASSIGN not in caller.permissions:
        raise Forbidden(
            "You lack the permission 'tickets.assign' that assigning needs.",
            permission=Permission.TICKETS_ASSIGN.value,
        )
    if assignee_id is None or caller.tenant is None:
        return
    if not may_work_tickets(session, caller.tenant.id, assignee_id):
        raise InvalidInput(
            "The assignee must be a member of this workspace who may work tickets.",
            code="invalid_assignee",
            field="assignee_id",
        )


def assignable_members(session: Session, caller: Caller) -> list[Worker]:
    """Whom ``caller`` may assign tickets to, by name; nobody when it may not assign."""
    if Permission.TICKETS_ASSIGN not in caller.permissions or caller.tenant is None:
        return []
    return ticket_workers(session, caller.tenant.id)


def delete_ticket(session: Session, caller: Caller, ticket_id: int) -> None:
    session.delete(find_visible(session, caller, ticket_id))
    session.flush()


def first_response(session: Session, ticket: Ticket, at: datetime) -> None:
    """Record the first agent response and whether it missed the SLA."""
    if ticket.first_response_at is None:
        ticket.first_response_at = at
        if ticket.sla_due_at is not None and at > ticket.sla_due_at:
            ticket.sla_breached = True


# --- GDPR: this domain's part of a subject's export and erasure --------------------------------


def requested_by(session: Session, customer_id: int | None) -> list[int]:
    """The tickets a customer requested, in id order."""
    return [] if customer_id is None else repository.requested_by(session, customer_id)


def export_subject(session: Session, subject: Subject) -> list[dict[str, Any]]:
    if subject.customer_id is None:
        return []
    return repository.requested_documents(session, subject.customer_id)


def erase_subject(session: Session, subject: Subject, *, now: datetime) -> int:
    """Tickets the subject requested lose their title and description (status, priority,
    category, tags, SLA figures and every timestamp stay); any other ticket's text loses its
    mentions of the subject. Returns how many tickets changed."""
    changed: set[int] = set()
    if subject.customer_id is not None:
        changed |= repository.redact_requested(session, subject.customer_id, redacted=REDACTED)
    changed |= repository.unmention(session, pattern=subject.pattern, erased=ERASED)
    return len(changed)


# --- retention: closed tickets past the policy -------------------------------------------------


def count_closed(session: Session, *, cutoff: datetime) -> PurgedTickets:
    """Closed tickets whose status last changed before ``cutoff``, and their comments."""
    tickets, comments = repository.count_closed_before(session, cutoff)
    return PurgedTickets([], tickets, comments)


def purge_closed(session: Session, *, cutoff: datetime, after: int, limit: int) -> PurgedTickets:
    """Delete the next ``limit`` closed tickets (id above ``after``) whose status last changed
    before ``cutoff``, with their comments and tags; rows a request holds are left for later."""
    ids = repository.closed_before(session, cutoff, after=after, limit=limit)
    if not ids:
        return PurgedTickets([], 0, 0)
    tickets, comments = repository.delete_with_comments(session, ids)
    return PurgedTickets(ids, tickets, comments)
