"""What the stored meter values say about a transaction's energy register."""

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bus.contract import MeterSample
from store.models import MeterValue

ENERGY_REGISTER = "Energy.Active.Import.Register"


class RegisterBounds(BaseModel):
    """The earliest and the newest imported-energy register of a transaction."""

    model_config = ConfigDict(frozen=True)

    first_wh: Decimal
    first_at: datetime
    last_wh: Decimal
    last_at: datetime


async def register_bounds(
    db: AsyncSession, charger_id: str, transaction_id: str
) -> RegisterBounds | None:
    """Return the transaction's first and last register, None if none stored."""
    registers = (
        select(MeterValue)
        .where(
            col(MeterValue.charger_id) == charger_id,
            col(MeterValue.transaction_id) == transaction_id,
            col(MeterValue.measurand) == ENERGY_REGISTER,
            col(MeterValue.phase) == "",
            col(MeterValue.unit).in_(("Wh", "kWh")),
        )
        .limit(1)
    )
    earliest = await db.exec(registers.order_by(col(MeterValue.sampled_at)))
    first = earliest.first()
    if first is None:
        return None
    newest = await db.exec(registers.order_by(col(MeterValue.sampled_at).desc()))
    last = newest.one()
    return RegisterBounds(
        first_wh=_wh(first),
        first_at=first.sampled_at,
        last_wh=_wh(last),
        last_at=last.sampled_at,
    )


def _wh(row: MeterValue) -> Decimal:
    sample = MeterSample(timestamp=row.sampled_at, value=row.value, unit=row.unit)
    wh = sample.energy_wh()
    assert wh is not None  # the query keeps Wh and kWh registers only
    return wh
