"""Webhooks: signed deliveries of domain events, retried until they land.

A real HTTP receiver (a plain asyncio server started here) fails the first
try of every event; the workflow tries again, and the delivery log shows
both tries. Every event is delivered once, signed with the webhook's secret.
"""

import asyncio
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.integration.charger import connected
from tests.integration.stack import Stack
from tests.integration.test_charge_session import charge, eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


@dataclass
class Receiver:
    """An HTTP endpoint that answers 500 to the first try of each event."""

    port: int
    fail_first: bool = True
    tries: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delivered: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = {
            name.lower(): value
            for name, _, value in (line.partition(": ") for line in lines[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        event_id = headers.get("moovolt-event-id", "")
        self.tries[event_id] += 1
        status = 500 if self.fail_first and self.tries[event_id] == 1 else 204
        if status == 204:
            self.delivered.append((headers, body))
        answer = f"HTTP/1.1 {status} X\r\nContent-Length: 0\r\n"
        writer.write(answer.encode() + b"Connection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver(free_port())
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", receiver.port)
    async with server:
        yield receiver


@pytest.fixture
async def admin(stack: Stack) -> httpx.AsyncClient:
    token = secrets.token_urlsafe(32)
    rows = await stack.sql(
        "INSERT INTO operator (name, role, created_at)"
        " VALUES ($1, 'admin', now()) RETURNING id",
        f"admin-{secrets.token_hex(3)}",
    )
    await stack.sql(
        "INSERT INTO api_token (operator_id, name, token_hash, created_at)"
        " VALUES ($1, 'tests', $2, now())",
        rows[0]["id"],
        hashlib.sha256(token.encode()).hexdigest(),
    )
    return httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {token}"}
    )


def verify(secret: str, headers: dict[str, str], body: bytes) -> None:
    fields = dict(
        part.split("=", 1) for part in headers["moovolt-signature"].split(",")
    )
    signed = f"{fields['t']}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(fields["v1"], expected)


async def test_events_are_delivered_signed_after_a_failed_try(
    stack: Stack, charger_id: str, receiver: Receiver, admin: httpx.AsyncClient
) -> None:
    async with admin:
        created = await admin.post(
            "/webhooks",
            json={"url": receiver.url, "event_types": ["cdr.*", "payment.*"]},
        )
        assert created.status_code == 201, created.text
        hook = created.json()

        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
        async with connected(stack.charger_url(charger_id), charger_id) as cp:
            await charge(cp, "TAG-OK", t0, steps=1)

        def mine() -> list[dict[str, Any]]:
            events = [json.loads(body) for _, body in receiver.delivered]
            return [e for e in events if e["charger_id"] == charger_id]

        async def both() -> list[dict[str, Any]] | None:
            events = mine()
            return events if len(events) >= 2 else None

        events = await eventually(both)
        assert [e["type"] for e in events] in (
            ["cdr.created", "payment.captured"],
            ["payment.captured", "cdr.created"],
        )
        for headers, body in receiver.delivered:
            verify(hook["secret"], headers, body)
        for event in events:
            assert receiver.tries[event["id"]] == 2

            log = await admin.get(
                f"/webhooks/{hook['id']}/deliveries", params={"event_id": event["id"]}
            )
            assert log.status_code == 200, log.text
            tries = sorted(
                (item["attempt"], item["outcome"], item["response_status"])
                for item in log.json()["items"]
            )
            assert tries == [(1, "failed", 500), (2, "delivered", 204)]

        # Deleted: no more deliveries, the log stays.
        deleted = await admin.delete(f"/webhooks/{hook['id']}")
        assert deleted.status_code == 204
        listed = await admin.get("/webhooks", params={"active": False})
        assert hook["id"] in [item["id"] for item in listed.json()["items"]]
        assert "secret" not in listed.json()["items"][0]


async def test_webhooks_are_for_admins_and_check_their_input(
    stack: Stack, api_token: str, admin: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {api_token}"}
    ) as operator:
        refused = await operator.get("/webhooks")
    assert refused.status_code == 403

    async with admin:
        bad = await admin.post(
            "/webhooks", json={"url": "http://example.test/", "event_types": ["nope"]}
        )
        assert bad.status_code == 422, bad.text
        assert "event_types" in bad.text
        not_a_url = await admin.post("/webhooks", json={"url": "ftp://x"})
        assert not_a_url.status_code == 422
