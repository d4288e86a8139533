"""Pricing of a charge session: one function, used for running cost and CDR."""

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

CENT = Decimal("0.01")
MILLI = Decimal("0.0001")


class TariffSnapshot(BaseModel):
    """The tariff as it was when a session started; later edits do not apply."""

    model_config = ConfigDict(frozen=True)

    id: int | None = None
    name: str
    currency: str
    price_per_kwh: Decimal = Decimal(0)
    price_per_minute: Decimal = Decimal(0)
    price_per_session: Decimal = Decimal(0)
    vat_percent: Decimal = Decimal(0)


class Cost(BaseModel):
    """A priced session, per component, in the tariff's currency."""

    model_config = ConfigDict(frozen=True)

    currency: str
    energy: Decimal
    time: Decimal
    session: Decimal
    total_excl_vat: Decimal
    vat: Decimal
    total_incl_vat: Decimal


def price(tariff: TariffSnapshot, energy_wh: Decimal, duration_s: int) -> Cost:
    """Price ``energy_wh`` delivered over ``duration_s`` seconds.

    Components are kept to four decimals; the totals are rounded half-up to
    cents once, so the sum of a CDR's lines is what the driver pays.

    Args:
        tariff: the session's tariff snapshot.
        energy_wh: energy delivered, never negative.
        duration_s: charging time in seconds, never negative.

    Returns:
        The cost per component and in total, with VAT.
    """
    energy_wh = max(energy_wh, Decimal(0))
    duration_s = max(duration_s, 0)

    energy = (energy_wh / 1000 * tariff.price_per_kwh).quantize(MILLI, ROUND_HALF_UP)
    time = (Decimal(duration_s) / 60 * tariff.price_per_minute).quantize(
        MILLI, ROUND_HALF_UP
    )
    session = tariff.price_per_session.quantize(MILLI, ROUND_HALF_UP)

    excl = (energy + time + session).quantize(CENT, ROUND_HALF_UP)
    vat = (excl * tariff.vat_percent / 100).quantize(CENT, ROUND_HALF_UP)
    return Cost(
        currency=tariff.currency,
        energy=energy,
        time=time,
        session=session,
        total_excl_vat=excl,
        vat=vat,
        total_incl_vat=excl + vat,
    )
