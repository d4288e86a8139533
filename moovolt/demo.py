"""The demo network that ``moovolt up`` seeds into an empty database.

Three chargers that need no password, three id tokens, a default tariff and an
admin operator whose API token is printed once.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from moovolt.auth import Role, create_operator, issue_token
from store.models import Charger, IdToken, Operator, Tariff

logger = logging.getLogger(__name__)

CHARGERS = ("demo-1", "demo-2", "demo-3")
ID_TOKENS = ("DEMO-TAG-1", "DEMO-TAG-2", "DEMO-TAG-3")
ADMIN = "demo-admin"
TARIFF_NAME = "demo"


def demo_tariff() -> Tariff:
    """Return the demo's default tariff: energy, time and a session fee."""
    return Tariff(
        name=TARIFF_NAME,
        currency="EUR",
        price_per_kwh=Decimal("0.35"),
        price_per_minute=Decimal("0.05"),
        price_per_session=Decimal("0.50"),
        vat_percent=Decimal("21"),
        is_default=True,
    )


@dataclass(frozen=True)
class DemoSeed:
    """What was seeded; ``token`` is the admin's API token, shown once."""

    chargers: list[str]
    id_tokens: list[str]
    tariff: str | None
    admin: str
    token: str


async def is_empty(db: AsyncSession) -> bool:
    """Return whether the database has neither chargers nor operators."""
    chargers = (await db.exec(select(func.count()).select_from(Charger))).one()
    operators = (await db.exec(select(func.count()).select_from(Operator))).one()
    return chargers == 0 and operators == 0


async def seed(db: AsyncSession) -> DemoSeed:
    """Add whatever of the demo network is missing; issue a new admin token.

    Running it twice adds nothing the second time but a fresh token.
    """
    chargers = [c for c in CHARGERS if await db.get(Charger, c) is None]
    for charger_id in chargers:
        db.add(Charger(id=charger_id, registration_status="Accepted"))

    tokens = [t for t in ID_TOKENS if await db.get(IdToken, t) is None]
    for token in tokens:
        db.add(IdToken(token=token, status="Accepted", owner="demo driver"))

    tariff = None
    found = await db.exec(select(Tariff).where(col(Tariff.is_default)).limit(1))
    if found.first() is None:
        db.add(demo_tariff())
        tariff = TARIFF_NAME
    await db.commit()

    found_admin = await db.exec(select(Operator).where(Operator.name == ADMIN))
    admin = found_admin.first()
    if admin is None:
        admin = await create_operator(db, ADMIN, Role.ADMIN)
    api_token = await issue_token(db, admin, name="demo")

    logger.info(
        "demo network seeded: %d chargers, %d id tokens", len(chargers), len(tokens)
    )
    return DemoSeed(chargers, tokens, tariff, ADMIN, api_token)
