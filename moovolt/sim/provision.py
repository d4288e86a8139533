"""The simulator's own chargers and id tokens, in the database it targets.

Simulated chargers are registered (Accepted, no password) and each gets one
Accepted id token, before they connect: auto-registration would leave them
Pending, and their sessions would never start. Adding them again adds
nothing.
"""

import logging

import asyncpg

from moovolt.sim.scenario import Scenario

logger = logging.getLogger(__name__)

OWNER = "moovolt-sim"


def plain_dsn(database_url: str) -> str:
    """Return an asyncpg DSN for a SQLAlchemy ``postgresql+asyncpg`` URL."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def provision(scenario: Scenario, database_url: str) -> int:
    """Register the scenario's chargers and their id tokens.

    Args:
        scenario: names the chargers and tokens.
        database_url: the moov.olt database (``MOOVOLT_DATABASE_URL``).

    Returns:
        How many chargers were added (those already there are kept).
    """
    chargers = [scenario.charger_id(i) for i in range(scenario.chargers)]
    tokens = [scenario.id_token(i) for i in range(scenario.chargers)]
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        async with connection.transaction():
            added = await connection.fetchval(
                "WITH added AS ("
                " INSERT INTO charger (id, registration_status, security_profile,"
                " connected, created_at)"
                " SELECT id, 'Accepted', 0, false, now() FROM unnest($1::text[]) id"
                " ON CONFLICT (id) DO NOTHING RETURNING 1)"
                " SELECT count(*) FROM added",
                chargers,
            )
            await connection.execute(
                "INSERT INTO id_token (token, status, owner, created_at)"
                " SELECT token, 'Accepted', $2, now() FROM unnest($1::text[]) token"
                " ON CONFLICT (token) DO NOTHING",
                tokens,
                OWNER,
            )
    finally:
        await connection.close()
    logger.info("provisioned %d simulated chargers (%d new)", len(chargers), added)
    return int(added)
