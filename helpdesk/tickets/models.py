"""Ticket tables, created in every tenant schema."""

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from helpdesk.core.models import TenantBase

# Full-text search over title and description, kept by PostgreSQL itself.
SEARCH_DOCUMENT = "to_tsvector('english'::regconfig, title || ' ' || description)"


class Ticket(TenantBase):
    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_search", "search", postgresql_using="gin"),
        Index("ix_tickets_status_id", "status", "id"),
        Index("ix_tickets_assignee_id_id", "assignee_id", "id"),
        Index("ix_tickets_customer_id_id", "customer_id", "id"),
        Index("ix_tickets_created_at_id", "created_at", "id"),
    )
    # Columns PostgreSQL fills in (the id, server defaults, the search vector) come back in the
    # INSERT's RETURNING rather than in a SELECT on first access or a refresh.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - declarative reads it once

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    status: Mapped[str] = mapped_column(String(16), server_default="open")
    priority: Mapped[str] = mapped_column(String(16), server_default="medium")
    category: Mapped[str | None] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("customers.id", ondelete="RESTRICT")
    )
    # A global user id; no foreign key so a tenant table never references public (Citus).
    assignee_id: Mapped[uuid.UUID | None]
    sla_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    first_response_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when a late first response (or a resolution without one) makes the breach final; an
    # unanswered ticket past sla_due_at is breached already (helpdesk.sla.state reads both).
    sla_breached: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    resolution_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # While the ticket is pending on the customer the resolution clock stands still.
    resolution_paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolution_breached: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # When the breach alert went out: one per ticket.
    sla_alerted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    escalated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    search: Mapped[str] = mapped_column(TSVECTOR, Computed(SEARCH_DOCUMENT, persisted=True))


class TicketTag(TenantBase):
    __tablename__ = "ticket_tags"
    __table_args__ = (Index("ix_ticket_tags_tag", "tag"),)

    ticket_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True)


class Comment(TenantBase):
    __tablename__ = "comments"
    __table_args__ = (Index("ix_comments_ticket_id_id", "ticket_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("tickets.id", ondelete="CASCADE"))
    author_id: Mapped[uuid.UUID]
    body: Mapped[str] = mapped_column(Text)
    public: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
