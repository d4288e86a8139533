"""Domain events reach other systems: the live feed (SSE) and the AMQP exchange.

A real charger runs a billed session; a client of the API's live feed and a
queue bound to ``<prefix>.domain-events`` (as another system would bind one)
must each see the session's story, in order, every event with its stable id.
"""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import aio_pika
import httpx
import pytest

from bus.contract import Topology
from bus.domain import DomainEvent
from tests.integration.charger import connected
from tests.integration.stack import Stack
from tests.integration.test_charge_session import charge

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


async def read_sse(response: httpx.Response, until: str) -> list[dict[str, Any]]:
    """Read server-sent events until one of type ``until`` arrives."""
    events: list[dict[str, Any]] = []
    block: dict[str, str] = {}
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(": ")
            block[name] = value
            continue
        if "data" in block:
            event = json.loads(block["data"])
            assert event["id"] == block["id"] and event["type"] == block["event"]
            events.append(event)
            if event["type"] == until:
                return events
        block = {}
    raise AssertionError(f"stream ended before {until}: {events}")


@pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1"])
async def test_the_live_feed_tells_a_session_as_it_happens(
    stack: Stack, charger_id: str, api_token: str, ocpp_version: str
) -> None:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    headers = {"Authorization": f"Bearer {api_token}"}
    params = {"charger_id": charger_id, "types": ["session.*", "cdr.*", "payment.*"]}
    async with (
        httpx.AsyncClient(base_url=stack.api_url, timeout=30) as client,
        client.stream("GET", "/events", params=params, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reading = asyncio.create_task(read_sse(response, until="payment.captured"))

        url = stack.charger_url(charger_id)
        async with connected(url, charger_id, ocpp_version) as cp:
            tx = await charge(cp, "TAG-OK", t0, steps=2)
        events = await asyncio.wait_for(reading, timeout=60)

    types = [e["type"] for e in events]
    assert types[:2] == ["session.started", "session.stopped"]
    assert types[-2:] == ["cdr.created", "payment.captured"]
    assert {e["charger_id"] for e in events} == {charger_id}
    started = events[0]
    assert started["data"]["transaction_id"] == tx
    cdr = next(e for e in events if e["type"] == "cdr.created")
    assert Decimal(cdr["data"]["energy_wh"]) == 8000
    payment = events[-1]
    assert payment["data"]["amount"] == cdr["data"]["cost"]["total_incl_vat"]


async def test_another_system_binds_its_own_queue(
    stack: Stack, charger_id: str
) -> None:
    topology = Topology(stack.env["MOOVOLT_BUS_PREFIX"])
    connection = await aio_pika.connect_robust(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(
            topology.domain_events, aio_pika.ExchangeType.TOPIC, durable=True
        )
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(exchange, "charger.#")
        await queue.bind(exchange, "session.#")

        t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
        async with connected(stack.charger_url(charger_id), charger_id) as cp:
            await cp.available(1)
            await charge(cp, "TAG-OK", t0, steps=1)

        seen: list[DomainEvent] = []
        async with queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    event = DomainEvent.model_validate_json(message.body)
                if event.charger_id != charger_id:
                    continue
                assert message.routing_key == event.type
                seen.append(event)
                if event.type == "session.state" and event.data["state"] == "Billed":
                    break

    types = [event.type for event in seen]
    assert types[0] == "charger.connected"
    assert "charger.status" in types
    assert types.index("session.started") < types.index("session.stopped")
    assert all(not t.startswith(("cdr.", "payment.")) for t in types)
    # One id per fact: a repeat would carry an id already seen.
    assert len({event.id for event in seen}) == len(seen)
