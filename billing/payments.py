"""Taking payment for a CDR through a provider, exactly once per session.

A provider is called with an idempotency key derived from the session's
workflow id (``payment-<workflow id>``); calling it again with the same key
must return the first receipt and move no money. Temporal retries the
``take_payment`` activity until the provider answers, so a provider raises
``PaymentDeclined`` for a final refusal and any other exception for a failure
worth retrying.

A session that costs nothing still gets a payment row, with status
``waived`` and amount 0, so every CDR has exactly one payment record.
"""

from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, ConfigDict
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bus.contract import utcnow
from store.models import IdToken, Payment


def payment_key(workflow_id: str) -> str:
    """Return the idempotency key of the payment of ``workflow_id``'s session."""
    return f"payment-{workflow_id}"


class PaymentStatus(StrEnum):
    CAPTURED = "captured"
    WAIVED = "waived"  # nothing to pay


class PaymentRequest(BaseModel):
    """What a provider is asked to charge."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    cdr_id: str
    id_token: str | None  # None: a 2.0.1 session no token was presented for
    amount: Decimal
    currency: str


class PaymentReceipt(BaseModel):
    """A provider's proof that the request was settled."""

    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    cdr_id: str
    provider: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    provider_reference: str | None = None


class PaymentDeclined(Exception):
    """The provider refused the charge for good; retrying will not help."""


class PaymentProvider(Protocol):
    """Something that moves money for a CDR."""

    name: str

    async def charge(self, request: PaymentRequest) -> PaymentReceipt:
        """Charge ``request.amount``, once per ``request.idempotency_key``.

        Raises:
            PaymentDeclined: the charge is refused for good.
        """
        ...


class LedgerProvider:
    """Debit the id token's owner in moov.olt's own ``payment`` table.

    The owner is the token's ``owner``, else its parent token, else the token
    itself; it is kept as the payment's ``provider_reference``. The unique
    idempotency key makes a repeated charge return the first row.
    """

    name = "ledger"

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    async def charge(self, request: PaymentRequest) -> PaymentReceipt:
        """Record the debit, or return the one recorded for this key before."""
        async with self._db() as db:
            token = (
                await db.get(IdToken, request.id_token) if request.id_token else None
            )
            owner = request.id_token or "anonymous"
            if token is not None:
                owner = token.owner or token.parent_token or owner

            status = (
                PaymentStatus.CAPTURED if request.amount > 0 else PaymentStatus.WAIVED
            )
            await db.exec(
                insert(Payment)
                .values(
                    cdr_id=request.cdr_id,
                    idempotency_key=request.idempotency_key,
                    provider=self.name,
                    amount=max(request.amount, Decimal(0)),
                    currency=request.currency,
                    status=status.value,
                    provider_reference=f"owner:{owner}",
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
            )
            await db.commit()

            found = await db.exec(
                select(Payment).where(
                    Payment.idempotency_key == request.idempotency_key
                )
            )
            row = found.one()
        return PaymentReceipt(
            idempotency_key=row.idempotency_key,
            cdr_id=row.cdr_id,
            provider=row.provider,
            amount=row.amount,
            currency=row.currency,
            status=PaymentStatus(row.status),
            provider_reference=row.provider_reference,
        )
