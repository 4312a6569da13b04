"""HTTP for /customers."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from auth.permissions import Permission
from helpdesk.core.pagination import Limit, decode_cursor, id_page
from helpdesk.customers import service
from helpdesk.customers.schemas import CustomerIn, CustomerOut, CustomerPage, CustomerPatch
from helpdesk.errors import error_responses
from helpdesk.pipeline import AppRoute, RowId, Scope, require

router = APIRouter(prefix="/customers", tags=["customers"], route_class=AppRoute)

Reader = Annotated[Scope, Depends(require(Permission.CUSTOMERS_READ))]
Writer = Annotated[Scope, Depends(require(Permission.CUSTOMERS_WRITE))]


@router.get("", responses=error_responses(401, 403, 422))
async def list_customers(
    scope: Reader,
    limit: Limit = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> CustomerPage:
    rows = await scope.run(service.list_customers, after_id=decode_cursor(cursor), limit=limit + 1)
    items, next_cursor = id_page([CustomerOut.model_validate(c) for c in rows], limit)
    await scope.audit(
        "customer.list", "customer", changes={"count": len(items)}, personal_data=True
    )
    return CustomerPage(items=items, next_cursor=next_cursor)


@router.get("/{customer_id}", responses=error_responses(401, 403, 404, 422))
async def get_customer(customer_id: RowId, scope: Reader) -> CustomerOut:
    customer = await scope.run(service.get_customer, customer_id)
    await scope.audit("customer.read", "customer", customer.id, personal_data=True)
    return CustomerOut.model_validate(customer)


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=error_responses(400, 401, 403, 409, 413, 422)
)
async def create_customer(body: CustomerIn, scope: Writer) -> CustomerOut:
    customer = await scope.run(service.create_customer, body)
    changes = body.model_dump(mode="json", exclude_none=True)
    if customer.phone is not None:
        changes["phone"] = customer.phone  # as stored (E.164), not as typed
    await scope.audit(
        "customer.create", "customer", customer.id, changes=changes, personal_data=True
    )
    return CustomerOut.model_validate(customer)


@router.patch("/{customer_id}", responses=error_responses(400, 401, 403, 404, 409, 413, 422))
async def update_customer(customer_id: RowId, body: CustomerPatch, scope: Writer) -> CustomerOut:
    customer, diff = await scope.run(service.update_customer, customer_id, body)
    await scope.audit("customer.update", "customer", customer.id, changes=diff, personal_data=True)
    return CustomerOut.model_validate(customer)
