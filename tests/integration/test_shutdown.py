"""SIGTERM to each process of the real stack: what is in flight is finished.

A decision is held in flight by a row lock: the test locks the charger's row,
so the worker's answer to a BootNotification (which writes that row) waits
until the test lets go. Each test starts the process it stopped again, so the
stack stays whole for the tests after it.
"""

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aio_pika
import asyncpg
import httpx
import pytest
import websockets
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from bus.contract import Topology
from tests.integration.charger import Booted, TestCharger
from tests.integration.stack import Process, Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(150)]

WAIT_S = 10.0
# Longer than the stack's 15 s drain: a process that ignores SIGTERM fails.
EXIT_WAIT_S = 30.0
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
T = TypeVar("T")


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


async def status_of(url: str) -> int | None:
    """Return the HTTP status of ``GET url``, or None if nothing answers."""
    try:
        async with httpx.AsyncClient(timeout=WAIT_S) as client:
            return (await client.get(url)).status_code
    except httpx.TransportError:
        return None


def terminate(process: Process) -> None:
    """Send SIGTERM and return at once."""
    assert process.popen is not None
    process.popen.send_signal(signal.SIGTERM)


async def exit_code(process: Process) -> int:
    """Wait for ``process`` to exit; return its status."""
    popen = process.popen
    assert popen is not None

    async def exited() -> bool:
        return popen.poll() is not None

    await eventually(exited, EXIT_WAIT_S)
    code = popen.returncode
    process.popen = None
    return code


async def start_again(process: Process, ready_url: str) -> None:
    """Start ``process`` and wait until its ``/readyz`` answers 200."""
    process.start()

    async def ready() -> bool:
        return await status_of(ready_url) == 200

    await eventually(ready, 60.0)


async def settle(stack: Stack, name: str, ready_url: str) -> None:
    """Leave ``name`` running and ready, however the test ended."""
    process = stack.processes[name]
    if process.popen is not None and process.popen.poll() is None:
        return
    process.popen = None
    await start_again(process, ready_url)


@contextlib.asynccontextmanager
async def charger_row_locked(stack: Stack, charger_id: str) -> AsyncIterator[Any]:
    """Hold a lock on the charger's row; yield a wait for a blocked writer."""
    connection = await asyncpg.connect(stack.database_url.replace("+asyncpg", ""))
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute(
        "SELECT 1 FROM charger WHERE id = $1 FOR UPDATE", charger_id
    )

    async def writer_blocked() -> None:
        async def waiting() -> bool:
            rows = await connection.fetch(
                "SELECT 1 FROM pg_stat_activity"
                " WHERE datname = $1 AND wait_event_type = 'Lock'",
                stack.database,
            )
            return bool(rows)

        await eventually(waiting, WAIT_S)

    try:
        yield writer_blocked
    finally:
        with contextlib.suppress(Exception):
            await transaction.rollback()
        await connection.close()


@contextlib.asynccontextmanager
async def charger_socket(
    stack: Stack, charger_id: str, charger_class: type[TestCharger] = TestCharger
) -> AsyncIterator[tuple[TestCharger, ClientConnection]]:
    """Connect a 1.6 charger; yield it with its socket."""
    async with websockets.connect(
        stack.charger_url(charger_id),
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
    ) as ws:
        charger = charger_class(charger_id, ws)
        serving = asyncio.create_task(charger.start())
        try:
            yield charger, ws
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await serving


async def test_gateway_finishes_a_call_in_flight_then_closes_with_1001(
    stack: Stack, charger_id: str
) -> None:
    gateway = stack.processes["gateway"]
    ready_url = f"http://127.0.0.1:{stack.gateway_port}/readyz"
    try:
        async with charger_socket(stack, charger_id) as (charger, ws):
            async with charger_row_locked(stack, charger_id) as writer_blocked:
                boot = asyncio.create_task(charger.boot())
                await writer_blocked()  # the SG is deciding on the boot
                terminate(gateway)

                async def draining() -> bool:
                    return await status_of(ready_url) == 503

                await eventually(draining, WAIT_S)
                with pytest.raises(InvalidStatus) as refused:
                    async with asyncio.timeout(WAIT_S):
                        await websockets.connect(
                            stack.charger_url(charger_id + "-late"),
                            subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                        )
                assert refused.value.response.status_code == 503
                assert not boot.done()
                assert gateway.popen is not None and gateway.popen.poll() is None

            # The lock is gone: the SG answers, the gateway relays, then closes.
            async with asyncio.timeout(WAIT_S):
                booted = await boot
                await ws.wait_closed()
            assert booted == Booted(status="Accepted", interval=300)
            assert ws.close_code == 1001
        assert await exit_code(gateway) == 0

        async def told_disconnected() -> bool:
            rows = await stack.sql(
                "SELECT connected FROM charger WHERE id = $1", charger_id
            )
            return rows[0]["connected"] is False

        await eventually(told_disconnected, WAIT_S)
        assert "draining: 1 calls and 0 commands in flight" in gateway.log_tail(400)
    finally:
        await settle(stack, "gateway", ready_url)


async def test_worker_finishes_a_decision_in_flight(
    stack: Stack, charger_id: str
) -> None:
    worker = stack.processes["worker"]
    ready_url = f"http://127.0.0.1:{stack.worker_health_port}/readyz"
    try:
        async with charger_socket(stack, charger_id) as (charger, _):
            async with charger_row_locked(stack, charger_id) as writer_blocked:
                boot = asyncio.create_task(charger.boot())
                await writer_blocked()
                terminate(worker)

                async def draining() -> bool:
                    async with httpx.AsyncClient(timeout=WAIT_S) as client:
                        response = await client.get(ready_url)
                    state: str = response.json()["ingress"]
                    return state == "draining"

                await eventually(draining, WAIT_S)
                assert not boot.done()
                assert worker.popen is not None and worker.popen.poll() is None

            async with asyncio.timeout(WAIT_S):
                booted = await boot
            assert booted == Booted(status="Accepted", interval=300)
            assert await exit_code(worker) == 0
        log = worker.log_tail(400)
        assert "ingress draining: 1 decisions in flight" in log
        assert "ingress drained" in log
        assert "unfinished" not in log
    finally:
        await settle(stack, "worker", ready_url)


async def test_worker_stopped_mid_stream_loses_no_meter_value(
    stack: Stack, charger_id: str
) -> None:
    worker = stack.processes["worker"]
    ready_url = f"http://127.0.0.1:{stack.worker_health_port}/readyz"
    samples = 60
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    dead_letters_queue = Topology(stack.env["MOOVOLT_BUS_PREFIX"]).dead_letters
    dead_letters = await _queue_depth(stack, dead_letters_queue)
    try:
        async with charger_socket(stack, charger_id) as (charger, _):
            await charger.boot()
            tx, _ = await charger.start_transaction(1, "TAG-OK", t0)
            for second in range(1, samples + 1):
                await charger.meter(tx, t0 + timedelta(seconds=second), 10)
                if second == samples // 3:
                    terminate(worker)
            assert await exit_code(worker) == 0
            await start_again(worker, ready_url)

            async def all_stored() -> list[Any] | None:
                rows = await stack.sql(
                    "SELECT sampled_at FROM meter_value"
                    " WHERE charger_id = $1 AND transaction_id = $2",
                    charger_id,
                    tx,
                )
                return rows if len(rows) >= samples else None

            rows = await eventually(all_stored)
            await charger.stop(tx, t0 + timedelta(seconds=samples + 1))

        expected = [t0 + timedelta(seconds=s) for s in range(1, samples + 1)]
        assert sorted(row["sampled_at"] for row in rows) == expected
        assert await _queue_depth(stack, dead_letters_queue) == dead_letters

        async def billed() -> list[Any] | None:
            rows = await stack.sql(
                "SELECT energy_wh FROM cdr WHERE charger_id = $1", charger_id
            )
            return rows or None

        [cdr] = await eventually(billed)
        assert cdr["energy_wh"] == samples * 10
    finally:
        await settle(stack, "worker", ready_url)


class SlowToAnswer(TestCharger):
    """A charger that takes its time to answer a remote start, then refuses."""

    __test__ = False
    answer_after_s = 2.0

    def __init__(self, charger_id: str, connection: Any) -> None:
        super().__init__(charger_id, connection)
        self.asked = asyncio.Event()

    @on(Action.remote_start_transaction)  # type: ignore[untyped-decorator]
    async def on_remote_start(self, id_tag: str, **_: Any) -> Any:
        self.asked.set()
        await asyncio.sleep(self.answer_after_s)
        return call_result.RemoteStartTransaction(status="Rejected")


async def test_api_finishes_a_request_in_flight(
    stack: Stack, charger_id: str, api_token: str
) -> None:
    api = stack.processes["api"]
    ready_url = f"http://127.0.0.1:{stack.api_port}/readyz"
    try:
        async with (
            charger_socket(stack, charger_id, SlowToAnswer) as (charger, _),
            httpx.AsyncClient(
                base_url=stack.api_url,
                headers={"Authorization": f"Bearer {api_token}"},
                timeout=30,
            ) as client,
        ):
            assert isinstance(charger, SlowToAnswer)
            await charger.boot()
            request = asyncio.create_task(
                client.post(
                    f"/chargers/{charger_id}/remote-start",
                    json={"connector_id": 1, "id_token": "TAG-OK"},
                )
            )
            async with asyncio.timeout(WAIT_S):
                await charger.asked.wait()
            terminate(api)

            async def not_listening() -> bool:
                return await status_of(ready_url) is None

            await eventually(not_listening, WAIT_S)
            assert not request.done()
            async with asyncio.timeout(WAIT_S):
                answered = await request

        assert answered.status_code == 409, answered.text
        assert answered.json()["type"] == "urn:moovolt:problem:rejected-by-charger"
        assert await exit_code(api) == 0
    finally:
        await settle(stack, "api", ready_url)


async def _queue_depth(stack: Stack, queue: str) -> int:
    """Return how many messages wait in ``queue``."""
    connection = await aio_pika.connect(stack.env.get("MOOVOLT_AMQP_URL", AMQP))
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return count
