"""The customer page: their details and tickets, and the form that edits the details (name,
company, phone, tier) through the API's own customer update, for roles that may write them."""

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from auth.permissions import Permission
from helpdesk.console.web import PREFIX, allow, page, parse, redirect
from helpdesk.customers import routes as customer_routes
from helpdesk.customers import service as customers
from helpdesk.customers.schemas import CustomerPatch, CustomerTier
from helpdesk.pipeline import AppRoute, RowId, Scope
from helpdesk.tickets import service as tickets
from helpdesk.tickets.schemas import TicketFilters

router = APIRouter(route_class=AppRoute)

Reader = Annotated[Scope, Depends(allow(Permission.CUSTOMERS_READ))]
Writer = Annotated[Scope, Depends(allow(Permission.CUSTOMERS_WRITE))]
PAGE_SIZE = 50
Text = Annotated[str, Form(max_length=200)]


@router.get("/customers/{customer_id}")
async def customer_page(
    request: Request, customer_id: RowId, scope: Reader, saved: bool = False
) -> Response:
    customer = await scope.run(customers.get_customer, customer_id)
    theirs: list[object] = []
    if Permission.TICKETS_READ in scope.caller.permissions:
        views = await tickets.list_tickets(
            scope.connection,
            scope.caller,
            TicketFilters(customer_id=customer_id),
            after_id=None,
            limit=PAGE_SIZE,
        )
        theirs = list(views)
    await scope.audit("customer.read", "customer", customer.id, personal_data=True)
    return page(
        request,
        "customer.html",
        scope,
        title=customer.name or customer.email,
        customer=customer,
        tickets=theirs,
        tiers=list(CustomerTier),
        saved=saved,
    )


@router.post("/customers/{customer_id}")
async def edit_customer(
    customer_id: RowId,
    scope: Writer,
    *,
    name: Text,
    tier: Annotated[str, Form(max_length=20)],
    company: Text = "",
    phone: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    """Every field at once, as the form shows them; a box emptied clears company or phone
    (PATCH /customers/{id} with null)."""
    body = parse(
        CustomerPatch,
        name=name.strip(),
        company=company.strip() or None,
        phone=phone.strip() or None,
        tier=tier,
    )
    await customer_routes.update_customer(customer_id, body, scope)
    return redirect(f"{PREFIX}/customers/{customer_id}?saved=true")
