"""Permissions and the built-in roles, as data: the one place API.md's role table lives in code."""

from enum import StrEnum


class Permission(StrEnum):
    TICKETS_READ = "tickets.read"
    TICKETS_CREATE = "tickets.create"
    TICKETS_UPDATE = "tickets.update"
    TICKETS_ASSIGN = "tickets.assign"
    TICKETS_DELETE = "tickets.delete"
    TICKETS_EXPORT = "tickets.export"
    TICKETS_BULK = "tickets.bulk"
    # Not a right to do anything: it makes its holder a candidate for automatic assignment.
    TICKETS_RECEIVE = "tickets.receive"
    COMMENTS_CREATE = "comments.create"
    CUSTOMERS_READ = "customers.read"
    CUSTOMERS_WRITE = "customers.write"
    MEMBERS_MANAGE = "members.manage"
    ROLES_MANAGE = "roles.manage"
    WEBHOOKS_MANAGE = "webhooks.manage"
    AUDIT_READ = "audit.read"
    AUDIT_EXPORT = "audit.export"
    AUDIT_VERIFY = "audit.verify"
    GDPR_EXPORT = "gdpr.export"
    GDPR_ERASE = "gdpr.erase"
    RETENTION_READ = "retention.read"
    RETENTION_MANAGE = "retention.manage"
    RETENTION_RUN = "retention.run"
    # Not in API.md's table: the workspace's SLA, business hours and auto-assignment settings
    # (docs/DECISIONS.md). An admin's, like the other workspace administration permissions.
    SETTINGS_MANAGE = "settings.manage"
    # An e-mail when a ticket breaches its first-response target (the team lead's).
    SLA_ALERTS = "sla.alerts"


# Permissions that mark who a role is rather than let it do anything: granting one grants no
# right, so the privilege ceiling does not ask the granter to hold it (an admin, who does not
# receive tickets, still appoints agents, who do).
MARKS: frozenset[Permission] = frozenset({Permission.TICKETS_RECEIVE})


class TicketScope(StrEnum):
    ALL = "all"
    ASSIGNED = "assigned"
    OWN = "own"  # a customer's own requests


P = Permission

BUILTIN_ROLES: dict[str, frozenset[Permission]] = {
    "admin": frozenset(
        {
            P.TICKETS_READ,
            P.TICKETS_CREATE,
            P.TICKETS_UPDATE,
            P.TICKETS_ASSIGN,
            P.TICKETS_DELETE,
            P.TICKETS_EXPORT,
            P.TICKETS_BULK,
            P.COMMENTS_CREATE,
            P.CUSTOMERS_READ,
            P.CUSTOMERS_WRITE,
            P.MEMBERS_MANAGE,
            P.ROLES_MANAGE,
            P.WEBHOOKS_MANAGE,
            P.AUDIT_READ,
            P.AUDIT_EXPORT,
            P.AUDIT_VERIFY,
            P.RETENTION_READ,
            P.SETTINGS_MANAGE,
            P.SLA_ALERTS,
        }
    ),
    # Admins are not auto-assignment candidates (API.md): they work tickets by choice. Only
    # agents receive among the built-ins: viewers, compliance and customers cannot work tickets.
    "agent": frozenset(
        {
            P.TICKETS_READ,
            P.TICKETS_CREATE,
            P.TICKETS_UPDATE,
            P.TICKETS_ASSIGN,
            P.TICKETS_BULK,
            P.TICKETS_RECEIVE,
            P.COMMENTS_CREATE,
            P.CUSTOMERS_READ,
            P.CUSTOMERS_WRITE,
        }
    ),
    # A viewer's comments.create is for internal notes only; the comment service enforces that.
    "viewer": frozenset({P.TICKETS_READ, P.COMMENTS_CREATE, P.CUSTOMERS_READ}),
    "compliance": frozenset(
        {
            P.CUSTOMERS_READ,
            P.AUDIT_READ,
            P.AUDIT_EXPORT,
            P.AUDIT_VERIFY,
            P.GDPR_EXPORT,
            P.GDPR_ERASE,
            P.RETENTION_READ,
            P.RETENTION_MANAGE,
            P.RETENTION_RUN,
        }
    ),
    # A customer's ticket and comment permissions reach only their own tickets (TicketScope.OWN).
    "customer": frozenset({P.TICKETS_READ, P.TICKETS_CREATE, P.COMMENTS_CREATE}),
}

BUILTIN_TICKET_SCOPES: dict[str, TicketScope] = {
    "admin": TicketScope.ALL,
    "agent": TicketScope.ALL,
    "viewer": TicketScope.ALL,
    "compliance": TicketScope.ALL,
    "customer": TicketScope.OWN,
}
