"""Payments: money taken for CDRs, one per CDR, read-only.

The session's workflow takes the payment through the provider once per
idempotency key (``billing.payments``); a session that costs nothing has a
``waived`` payment of 0.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import AfterValidator, BaseModel, ConfigDict
from sqlalchemy import ColumnElement
from sqlmodel import col

from api.deps import IntId, Limit, Offset, SessionDep, Since, Until, ViewerDep
from api.models import Page, no_nul
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from store.models import Payment

router = APIRouter(prefix="/payments", tags=["payments"])


class PaymentPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cdr_id: str
    idempotency_key: str
    provider: str
    amount: Decimal
    currency: str
    status: str
    provider_reference: str | None
    created_at: datetime


class PaymentPage(Page[PaymentPublic]):
    pass


SORT = sorting(
    {
        "id": col(Payment.id),
        "created_at": col(Payment.created_at),
        "amount": col(Payment.amount),
    },
    default="-id",
    tiebreak=col(Payment.id),
)


def _text(description: str) -> Any:
    return Query(max_length=100, description=description)


@router.get("", responses=documented(401, 403))
async def list_payments(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    status: Annotated[
        str | None, _text("e.g. `captured`, `waived`."), AfterValidator(no_nul)
    ] = None,
    cdr_id: Annotated[
        str | None, _text("Only of this CDR."), AfterValidator(no_nul)
    ] = None,
    provider: Annotated[
        str | None, _text("Only through this provider."), AfterValidator(no_nul)
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> PaymentPage:
    """List payments, newest first unless sorted; the time is when taken."""
    where: list[ColumnElement[bool]] = []
    if status is not None:
        where.append(col(Payment.status) == status)
    if cdr_id is not None:
        where.append(col(Payment.cdr_id) == cdr_id)
    if provider is not None:
        where.append(col(Payment.provider) == provider)
    if since is not None:
        where.append(col(Payment.created_at) >= since)
    if until is not None:
        where.append(col(Payment.created_at) < until)
    total, rows = await fetch_page(
        db, Payment, where, order, limit=limit, offset=offset
    )
    return PaymentPage(
        items=[PaymentPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{payment_id}", responses=documented(401, 403, 404))
async def get_payment(payment_id: IntId, db: SessionDep, _: ViewerDep) -> PaymentPublic:
    """Return one payment."""
    row = await db.get(Payment, payment_id)
    if row is None:
        raise ProblemError(404, "Not Found", f"No payment {payment_id}.")
    return PaymentPublic.model_validate(row)
