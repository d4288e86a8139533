"""Probes and metrics of the gateway, the worker and the API, on the real stack.

The gateway answers ``/healthz``, ``/readyz`` and ``/metrics`` on its own
port, the worker on ``MOOVOLT_WORKER_HEALTH_PORT``, the API beside its
routes. Counters are read before and after what a test does, since the stack
is shared by the session's tests.
"""

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import asyncpg
import httpx
import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families
from websockets.exceptions import InvalidStatus

from tests.integration.charger import connected
from tests.integration.stack import PG_ADMIN, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 10.0
T = TypeVar("T")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def gateway_url(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.gateway_port}{path}"


def worker_url(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.worker_health_port}{path}"


def api_url(stack: Stack, path: str) -> str:
    return f"http://127.0.0.1:{stack.api_port}{path}"


async def get(url: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        return await client.get(url, **kwargs)


async def scrape(url: str) -> Samples:
    """Return every sample of a ``/metrics`` page by name and labels."""
    response = await get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            samples[(sample.name, labels)] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 30.0
) -> T:
    """Return the first truthy result of ``probe``, polling until timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.1)


# -- Probes ------------------------------------------------------------------------


async def test_the_gateway_answers_probes_on_its_own_port(stack: Stack) -> None:
    live = await get(gateway_url(stack, "/healthz"))
    ready = await get(gateway_url(stack, "/readyz?full=1"))
    page = await get(gateway_url(stack, "/metrics"))

    assert live.status_code == 200, live.text
    assert live.json() == {"status": "ok"}
    assert live.headers["content-type"] == "application/json"
    assert live.headers["server"] == "moovolt"
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "bus": "ok", "server": "ok"}
    assert page.status_code == 200, page.text
    assert "# TYPE moovolt_gateway_connections gauge" in page.text
    assert "# TYPE moovolt_gateway_decision_seconds histogram" in page.text
    assert "moovolt_sg_" not in page.text
    assert "moovolt_api_" not in page.text


async def test_the_gateway_keeps_other_plain_requests_as_before(
    stack: Stack,
) -> None:
    elsewhere = await get(gateway_url(stack, "/status"))
    assert elsewhere.status_code == 404, elsewhere.text

    # A WebSocket handshake to a probe's path is no probe: outside /ocpp/.
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(
                f"ws://127.0.0.1:{stack.gateway_port}/healthz",
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )
    assert refused.value.response.status_code == 404


async def test_the_worker_answers_probes_on_its_port(stack: Stack) -> None:
    live = await get(worker_url(stack, "/healthz"))
    ready = await get(worker_url(stack, "/readyz"))
    page = await get(worker_url(stack, "/metrics"))

    assert live.status_code == 200, live.text
    assert live.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "bus": "ok",
        "temporal": "ok",
        "database": "ok",
        "ingress": "ok",
    }
    assert page.status_code == 200, page.text
    assert "# TYPE moovolt_sg_decision_seconds histogram" in page.text
    assert "# TYPE moovolt_sg_sessions_ended_total counter" in page.text
    assert "moovolt_gateway_" not in page.text


async def test_the_worker_answers_only_probes(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=WAIT_S) as client:
        unknown = await client.get(worker_url(stack, "/api/v1/chargers"))
        posted = await client.post(worker_url(stack, "/healthz"))
        head = await client.head(worker_url(stack, "/healthz"))

    assert unknown.status_code == 404, unknown.text
    assert posted.status_code == 405, posted.text
    assert posted.headers["allow"] == "GET, HEAD"
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len('{"status": "ok"}\n'))


async def test_the_worker_answers_a_prober_that_says_nothing(stack: Stack) -> None:
    """A connection that sends half a request does not hold the probe server."""
    _, silent = await asyncio.open_connection("127.0.0.1", stack.worker_health_port)
    silent.write(b"GET /readyz HTTP/1.1\r\n")
    try:
        ready = await get(worker_url(stack, "/readyz"))
        assert ready.status_code == 200, ready.text
    finally:
        silent.close()
        await silent.wait_closed()


async def test_readiness_follows_the_database(stack: Stack) -> None:
    """The worker and the API are not ready while their database refuses them."""
    admin = await asyncpg.connect(PG_ADMIN)
    try:
        await admin.execute(
            f'ALTER DATABASE "{stack.database}" WITH ALLOW_CONNECTIONS false'
        )
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = $1 AND pid <> pg_backend_pid()",
            stack.database,
        )

        async def worker_not_ready() -> httpx.Response | None:
            response = await get(worker_url(stack, "/readyz"))
            return response if response.status_code == 503 else None

        refused = await eventually(worker_not_ready, WAIT_S)
        api = await get(api_url(stack, "/readyz"))
    finally:
        await admin.execute(
            f'ALTER DATABASE "{stack.database}" WITH ALLOW_CONNECTIONS true'
        )
        await admin.close()

    assert refused.json() == {
        "status": "not ready",
        "bus": "ok",
        "temporal": "ok",
        "database": "down",
        "ingress": "ok",
    }
    assert api.status_code == 503, api.text

    async def worker_ready() -> bool:
        return (await get(worker_url(stack, "/readyz"))).status_code == 200

    await eventually(worker_ready, WAIT_S)
    assert (await get(api_url(stack, "/readyz"))).status_code == 200


# -- Metrics -----------------------------------------------------------------------


async def test_connections_are_counted_by_version(
    stack: Stack, charger_id: str, ocpp_version: str
) -> None:
    metrics = gateway_url(stack, "/metrics")
    before = await scrape(metrics)
    open_before = value(before, "moovolt_gateway_connections", version=ocpp_version)

    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()  # answered: the gateway serves the socket
        during = await scrape(metrics)

    async def closed() -> Samples | None:
        after = await scrape(metrics)
        gauge = value(after, "moovolt_gateway_connections", version=ocpp_version)
        return after if gauge == open_before else None

    after = await eventually(closed, WAIT_S)
    assert (
        value(during, "moovolt_gateway_connections", version=ocpp_version)
        == open_before + 1
    )
    accepted = {"outcome": "accepted", "status": "101"}
    assert (
        value(after, "moovolt_gateway_handshakes_total", **accepted)
        == value(before, "moovolt_gateway_handshakes_total", **accepted) + 1
    )
    boot = {"version": ocpp_version, "action": "BootNotification", "outcome": "result"}
    assert (
        value(after, "moovolt_gateway_charger_messages_total", **boot)
        == value(before, "moovolt_gateway_charger_messages_total", **boot) + 1
    )


async def test_refused_handshakes_are_counted_by_status(stack: Stack) -> None:
    metrics = gateway_url(stack, "/metrics")
    before = await scrape(metrics)

    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(
                stack.charger_url("nobody-knows-me"),
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
            )

    after = await scrape(metrics)
    assert refused.value.response.status_code == 404
    unknown = {"outcome": "refused", "status": "404"}
    assert (
        value(after, "moovolt_gateway_handshakes_total", **unknown)
        == value(before, "moovolt_gateway_handshakes_total", **unknown) + 1
    )


async def test_a_charge_session_shows_in_the_metrics(
    stack: Stack, charger_id: str
) -> None:
    gateway_metrics = gateway_url(stack, "/metrics")
    worker_metrics = worker_url(stack, "/metrics")
    gateway_before = await scrape(gateway_metrics)
    worker_before = await scrape(worker_metrics)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)

    async with connected(stack.charger_url(charger_id), charger_id, "1.6") as cp:
        await cp.boot()
        tx, _ = await cp.start_transaction(1, "TAG-OK", t0)
        await cp.meter(tx, t0 + timedelta(minutes=5), 1000)
        await cp.stop(tx, t0 + timedelta(minutes=10))

    async def billed() -> Samples | None:
        after = await scrape(worker_metrics)
        ended = value(after, "moovolt_sg_sessions_ended_total", state="Billed")
        before = value(worker_before, "moovolt_sg_sessions_ended_total", state="Billed")
        stored = value(after, "moovolt_sg_events_stored_total", kind="meter_values")
        earlier = value(
            worker_before, "moovolt_sg_events_stored_total", kind="meter_values"
        )
        return after if ended > before and stored > earlier else None

    worker_after = await eventually(billed)
    gateway_after = await scrape(gateway_metrics)

    def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for kind in ("boot", "transaction_started", "transaction_ended"):
        assert (
            grew(
                gateway_before,
                gateway_after,
                "moovolt_gateway_decision_seconds_count",
                kind=kind,
                outcome="answered",
            )
            == 1
        ), kind
        assert (
            grew(
                worker_before,
                worker_after,
                "moovolt_sg_decision_seconds_count",
                kind=kind,
                outcome="ok",
            )
            == 1
        ), kind
    assert (
        grew(
            gateway_before,
            gateway_after,
            "moovolt_gateway_events_published_total",
            kind="meter_values",
            outcome="confirmed",
        )
        == 1
    )
    assert (
        grew(
            worker_before,
            worker_after,
            "moovolt_sg_event_batch_size_count",
            outcome="stored",
        )
        >= 1
    )
    for state in ("Charging", "Stopped", "Billed"):
        assert (
            grew(
                worker_before,
                worker_after,
                "moovolt_sg_session_states_total",
                state=state,
            )
            >= 1
        ), state


async def test_api_requests_are_counted_by_route_template(
    stack: Stack, api_token: str
) -> None:
    metrics = api_url(stack, "/metrics")
    before = await scrape(metrics)
    route = "/api/v1/cdrs/{cdr_id}"
    cdr_id = "cdr-nobody-has-this-one"

    missing = await get(
        f"{stack.api_url}/cdrs/{cdr_id}",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    anonymous = await get(f"{stack.api_url}/cdrs/{cdr_id}")
    under_prefix = await get(f"{stack.api_url}/metrics")
    page = await get(metrics)
    after = await scrape(metrics)

    assert missing.status_code == 404, missing.text
    assert anonymous.status_code == 401, anonymous.text
    assert under_prefix.status_code == 404, under_prefix.text
    for status in ("404", "401"):
        labels = {"method": "GET", "route": route, "status": status}
        assert (
            value(after, "moovolt_api_requests_total", **labels)
            == value(before, "moovolt_api_requests_total", **labels) + 1
        ), status
    timed = {"method": "GET", "route": route}
    assert (
        value(after, "moovolt_api_request_seconds_count", **timed)
        == value(before, "moovolt_api_request_seconds_count", **timed) + 2
    )
    assert cdr_id not in page.text
    assert "moovolt_gateway_" not in page.text


async def test_probe_bodies_are_json(stack: Stack) -> None:
    for url in (
        gateway_url(stack, "/readyz"),
        worker_url(stack, "/readyz"),
        api_url(stack, "/readyz"),
    ):
        response = await get(url)
        assert response.status_code == 200, f"{url}: {response.text}"
        assert json.loads(response.text)["status"] == "ready", url
