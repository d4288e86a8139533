"""The SG's decisions on connect and boot, against a real PostgreSQL.

These need no Temporal: connect and boot are answered from the database.
"""

import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import asyncpg
import pytest
from argon2 import PasswordHasher
from temporalio.client import Client

from bus.contract import (
    BootRequest,
    ChargerConnecting,
    EventEnvelope,
    OcppVersion,
    RegistrationStatus,
)
from ingress.decisions import Decider
from moovolt.settings import BootPolicy, Settings
from store.db import make_engine, make_sessionmaker
from store.migrate import ensure_database, upgrade_async

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    name = f"moovolt_t_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    await ensure_database(url)
    await upgrade_async(url)
    yield url
    admin = await asyncpg.connect(f"{PG}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def decide(database_url: str) -> AsyncIterator[Any]:
    """Return a factory of Deciders on the test database, by settings."""
    engine = make_engine(database_url, pool_size=2)
    db = make_sessionmaker(engine)

    def make(**settings: Any) -> Decider:
        # Connect and boot never reach Temporal.
        return Decider(Settings(**settings), db, cast(Client, None))

    yield make
    await engine.dispose()


def envelope(charger_id: str, event: Any) -> EventEnvelope:
    return EventEnvelope(
        message_id="m-1",
        charger_id=charger_id,
        ocpp_version=OcppVersion.V16,
        gateway_id="gw-1",
        event=event,
    )


BOOT = BootRequest(vendor="acme", model="fast")


async def test_unknown_charger_is_refused_without_auto_registration(
    decide: Any, database_url: str
) -> None:
    charger = f"cp-{uuid.uuid4().hex[:6]}"
    decision = await decide().connect(
        envelope(charger, ChargerConnecting()), ChargerConnecting()
    )
    assert (decision.accepted, decision.reason) == (False, "unknown")
    assert await _charger(database_url, charger) is None


async def test_auto_registration_lets_the_charger_in_as_pending(
    decide: Any, database_url: str
) -> None:
    charger = f"cp-{uuid.uuid4().hex[:6]}"
    decider = decide(auto_register_chargers=True)

    decision = await decider.connect(
        envelope(charger, ChargerConnecting()), ChargerConnecting()
    )
    assert decision.accepted
    row = await _charger(database_url, charger)
    assert row is not None
    assert (row["registration_status"], row["connected"]) == ("Pending", True)

    boot = await decider.boot(envelope(charger, BOOT), BOOT)
    assert boot.status is RegistrationStatus.PENDING


async def test_boot_policy_rejected(decide: Any, database_url: str) -> None:
    charger = f"cp-{uuid.uuid4().hex[:6]}"
    decider = decide(
        auto_register_chargers=True, boot_policy_unaccepted=BootPolicy.REJECTED
    )
    await decider.connect(envelope(charger, ChargerConnecting()), ChargerConnecting())

    boot = await decider.boot(envelope(charger, BOOT), BOOT)
    assert boot.status is RegistrationStatus.REJECTED
    row = await _charger(database_url, charger)
    assert row is not None
    assert (row["vendor"], row["model"]) == ("acme", "fast")


@pytest.mark.parametrize(
    ("required", "proven", "password", "answer"),
    [
        (0, 1, "secret", (True, "")),
        (0, 1, "wrong", (False, "password")),
        (2, 1, "secret", (False, "security_profile")),
        (2, 2, "secret", (True, "")),
        (2, 2, None, (False, "password")),
        (3, 2, "secret", (False, "security_profile")),
        # A verified client certificate stands for the password.
        (3, 3, None, (True, "")),
    ],
)
async def test_security_profile_and_password(
    decide: Any,
    database_url: str,
    required: int,
    proven: int,
    password: str | None,
    answer: tuple[bool, str],
) -> None:
    charger = f"cp-{uuid.uuid4().hex[:6]}"
    await _sql(
        database_url,
        "INSERT INTO charger (id, registration_status, password_hash,"
        " security_profile, connected, created_at)"
        " VALUES ($1, 'Accepted', $2, $3, false, now())",
        charger,
        PasswordHasher().hash("secret"),
        required,
    )
    event = ChargerConnecting(password=password, security_profile=proven)

    decision = await decide().connect(envelope(charger, event), event)

    assert (decision.accepted, decision.reason) == answer
    row = await _charger(database_url, charger)
    assert row["connected"] is decision.accepted


async def _sql(database_url: str, query: str, *args: Any) -> None:
    name = database_url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(f"{PG}/{name}")
    try:
        await connection.execute(query, *args)
    finally:
        await connection.close()


async def _charger(database_url: str, charger_id: str) -> Any:
    name = database_url.rsplit("/", 1)[1]
    connection = await asyncpg.connect(f"{PG}/{name}")
    try:
        return await connection.fetchrow(
            "SELECT * FROM charger WHERE id = $1", charger_id
        )
    finally:
        await connection.close()
