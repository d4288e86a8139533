"""Fixtures and helpers of the API tests: a throwaway database, the app."""

import hashlib
import secrets
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from api.app import create_app
from moovolt.settings import Settings
from store.migrate import ensure_database, upgrade_async


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
async def database_url() -> AsyncIterator[str]:
    """A throwaway, migrated database, dropped after the module."""
    base = make_url(Settings().database_url)
    name = f"moovolt_t_{uuid.uuid4().hex[:8]}"
    url = base.set(database=name).render_as_string(hide_password=False)
    await ensure_database(url)
    await upgrade_async(url)
    yield url

    admin = await asyncpg.connect(
        host=base.host,
        port=base.port or 5432,
        user=base.username,
        password=base.password,
        database="postgres",
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client talking to it in-process."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://api.test"
        ) as http:
            yield http


def auth(token: str) -> dict[str, str]:
    """Return the headers carrying ``token``."""
    return {"Authorization": f"Bearer {token}"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """Assert ``response`` is a problem-details body of ``status``; return it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"]
    return body


async def stack_token(stack: Any, role: str, name: str | None = None) -> str:
    """Register an operator of ``role`` on the running stack; return its token.

    Args:
        stack: the ``tests.integration.stack.Stack`` to register it on.
        role: viewer, operator or admin.
        name: the operator's name; a unique one when left out.
    """
    token = secrets.token_urlsafe(32)
    rows = await stack.sql(
        "INSERT INTO operator (name, role, created_at)"
        " VALUES ($1, $2, now()) RETURNING id",
        name or f"{role}-{secrets.token_hex(4)}",
        role,
    )
    await stack.sql(
        "INSERT INTO api_token (operator_id, name, token_hash, created_at)"
        " VALUES ($1, 'tests', $2, now())",
        rows[0]["id"],
        hashlib.sha256(token.encode()).hexdigest(),
    )
    return token
