"""Pricing: worked examples and properties of ``billing.tariff.price``."""

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given
from hypothesis import strategies as st

from activities.types import measure
from billing.tariff import TariffSnapshot, price

STANDARD = TariffSnapshot(
    name="standard",
    currency="EUR",
    price_per_kwh=Decimal("0.30"),
    price_per_minute=Decimal("0.05"),
    price_per_session=Decimal("1.00"),
    vat_percent=Decimal("23"),
)

money = st.decimals(
    min_value=Decimal(0), max_value=Decimal(50), places=4, allow_nan=False
)
tariffs = st.builds(
    TariffSnapshot,
    name=st.just("t"),
    currency=st.just("EUR"),
    price_per_kwh=money,
    price_per_minute=money,
    price_per_session=money,
    vat_percent=st.decimals(
        min_value=Decimal(0), max_value=Decimal(30), places=2, allow_nan=False
    ),
)
energies = st.decimals(
    min_value=Decimal(0), max_value=Decimal(500_000), places=3, allow_nan=False
)
durations = st.integers(min_value=0, max_value=14 * 24 * 3600)


def test_worked_example() -> None:
    cost = price(STANDARD, Decimal(12500), 1800)

    assert cost.energy == Decimal("3.7500")
    assert cost.time == Decimal("1.5000")
    assert cost.session == Decimal("1.0000")
    assert cost.total_excl_vat == Decimal("6.25")
    assert cost.vat == Decimal("1.44")
    assert cost.total_incl_vat == Decimal("7.69")
    assert cost.currency == "EUR"


def test_free_tariff_costs_nothing() -> None:
    cost = price(TariffSnapshot(name="free", currency="EUR"), Decimal(9000), 600)

    assert cost.total_incl_vat == Decimal(0)


def test_negative_inputs_price_as_zero() -> None:
    assert price(STANDARD, Decimal(-500), -60) == price(STANDARD, Decimal(0), 0)


def test_measure_never_bills_a_meter_that_went_backwards() -> None:
    start = datetime(2025, 3, 1, 8, tzinfo=UTC)
    figures = measure(
        STANDARD, Decimal(9000), Decimal(1000), start, start + timedelta(minutes=10)
    )

    assert figures.energy_wh == Decimal(0)
    assert figures.duration_s == 600
    assert figures.cost == price(STANDARD, Decimal(0), 600)


def test_measure_of_a_session_not_started_is_free_of_energy_and_time() -> None:
    figures = measure(STANDARD, None, Decimal(1000), None, None)

    assert (figures.energy_wh, figures.duration_s) == (Decimal(0), 0)


@given(tariffs, energies, durations)
def test_total_is_excl_plus_vat(
    tariff: TariffSnapshot, energy: Decimal, duration: int
) -> None:
    cost = price(tariff, energy, duration)

    assert cost.total_incl_vat == cost.total_excl_vat + cost.vat
    lines = cost.energy + cost.time + cost.session
    assert cost.total_excl_vat == lines.quantize(Decimal("0.01"), ROUND_HALF_UP)


@given(tariffs, energies, energies, durations)
def test_monotonic_in_energy(
    tariff: TariffSnapshot, a: Decimal, b: Decimal, duration: int
) -> None:
    low, high = sorted((a, b))

    assert (
        price(tariff, low, duration).total_incl_vat
        <= price(tariff, high, duration).total_incl_vat
    )


@given(tariffs, energies, durations, durations)
def test_monotonic_in_time(
    tariff: TariffSnapshot, energy: Decimal, a: int, b: int
) -> None:
    low, high = sorted((a, b))

    assert (
        price(tariff, energy, low).total_incl_vat
        <= price(tariff, energy, high).total_incl_vat
    )


@given(
    tariffs,
    st.decimals(
        min_value=Decimal("-1e6"), max_value=Decimal("1e6"), places=3, allow_nan=False
    ),
    st.integers(min_value=-(10**6), max_value=10**7),
)
def test_never_negative(tariff: TariffSnapshot, energy: Decimal, duration: int) -> None:
    cost = price(tariff, energy, duration)

    for part in (cost.energy, cost.time, cost.session, cost.vat, cost.total_incl_vat):
        assert part >= 0
