"""The running stack and the network seeded for the session tests."""

import hashlib
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.charger import VERSIONS
from tests.integration.stack import Stack, running_stack

TARIFF = {
    "price_per_kwh": Decimal("0.30"),
    "price_per_minute": Decimal("0.02"),
    "price_per_session": Decimal("1.00"),
    "vat_percent": Decimal("20"),
}


@pytest.fixture(scope="session")
async def stack(
    run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """The whole stack, started once for the test session."""
    logs: Path = tmp_path_factory.mktemp("stack")
    async with running_stack(run_id, logs) as stack:
        await _seed(stack)
        yield stack


async def _seed(stack: Stack) -> None:
    await stack.sql(
        "INSERT INTO tariff (name, currency, price_per_kwh, price_per_minute,"
        " price_per_session, vat_percent, is_default, created_at)"
        " VALUES ('standard', 'EUR', $1, $2, $3, $4, true, now())",
        *TARIFF.values(),
    )
    for token, status, expires in (
        ("TAG-OK", "Accepted", None),
        ("TAG-OK-2", "Accepted", None),
        ("TAG-BLOCKED", "Blocked", None),
        ("TAG-EXPIRED", "Accepted", datetime(2020, 1, 1, tzinfo=UTC)),
    ):
        await stack.sql(
            "INSERT INTO id_token (token, status, expires_at, owner, created_at)"
            " VALUES ($1, $2, $3, 'driver', now())",
            token,
            status,
            expires,
        )


@pytest.fixture
async def charger_id(stack: Stack) -> str:
    """A registered charger of this test's own."""
    charger = f"cp-{secrets.token_hex(4)}"
    await stack.sql(
        "INSERT INTO charger (id, registration_status, connected, created_at)"
        " VALUES ($1, 'Accepted', false, now())",
        charger,
    )
    return charger


@pytest.fixture(params=VERSIONS, ids=VERSIONS)
def ocpp_version(request: pytest.FixtureRequest) -> str:
    """The OCPP version of the test's charger: the test runs once per version."""
    version: str = request.param
    return version


@pytest.fixture(scope="session")
async def api_token(stack: Stack) -> str:
    """A bearer token of an operator with the operator role."""
    return await _token(stack, "tests", "operator")


@pytest.fixture(scope="session")
async def viewer_token(stack: Stack) -> str:
    """A bearer token of an operator with the viewer role."""
    return await _token(stack, "tests-viewer", "viewer")


async def _token(stack: Stack, name: str, role: str) -> str:
    token = secrets.token_urlsafe(32)
    rows = await stack.sql(
        "INSERT INTO operator (name, role, created_at)"
        " VALUES ($1, $2, now()) RETURNING id",
        name,
        role,
    )
    await stack.sql(
        "INSERT INTO api_token (operator_id, name, token_hash, created_at)"
        " VALUES ($1, $2, $3, now())",
        rows[0]["id"],
        name,
        hashlib.sha256(token.encode()).hexdigest(),
    )
    return token
