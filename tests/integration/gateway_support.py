"""Harness of ``test_gateway``: an SG stand-in, inboxes, chargers and gateways.

The fixtures here are imported by name into the test module, where pytest
looks for them.
"""

import asyncio
import base64
import contextlib
import json
import os
import socket
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, TypeVar

import aio_pika
import pytest
import websockets
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue
from ocpp import v201
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus
from ocpp.v201.enums import Action as Action201
from pydantic import BaseModel
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from bus.amqp import QUORUM, BusClient
from bus.contract import (
    AuthorizationStatus,
    AuthorizeDecision,
    BootDecision,
    ChargerConnecting,
    Command,
    CommandEnvelope,
    ConnectDecision,
    Decision,
    DecisionEnvelope,
    DecisionError,
    EventEnvelope,
    IdTokenInfo,
    OcppMessage,
    OcppReply,
    OcppVersion,
    RegistrationStatus,
    StartDecision,
    StopDecision,
    Topology,
    TransactionDecision,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from moovolt.settings import Settings
from spr_gateway.app import run_gateway
from spr_gateway.timestamps import parse_datetime

AMQP_URL = os.environ.get("MOOVOLT_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
OCPP16 = [Subprotocol("ocpp1.6")]
OCPP201 = [Subprotocol("ocpp2.0.1")]
# Upper bound of every single wait in these tests; a pass takes milliseconds.
WAIT_S = 10.0
# How long a test watches for a frame that must not come.
QUIET_S = 0.3

BOOT_TIME = parse_datetime("2025-03-01T12:00:00Z")
SILENT_TOKEN = "SILENT"
WRONG_PASSWORD = "wrong-password"
# What the stand-in bills a 2.0.1 transaction: running while it is updated,
# in total when it ends (half a cent, so that rounding shows on the wire).
RUNNING_COST = Decimal("4.20")
TOTAL_COST = Decimal("12.345")

# The CALLERROR codes each version's OCPP-J specification lists; 1.6 keeps
# FormationViolation and the misspelt OccurenceConstraintViolation.
CALLERROR_CODES: dict[OcppVersion, frozenset[str]] = {
    OcppVersion.V16: frozenset(
        {
            "NotImplemented",
            "NotSupported",
            "InternalError",
            "ProtocolError",
            "SecurityError",
            "FormationViolation",
            "PropertyConstraintViolation",
            "OccurenceConstraintViolation",
            "TypeConstraintViolation",
            "GenericError",
        }
    ),
    OcppVersion.V201: frozenset(
        {
            "FormatViolation",
            "GenericError",
            "InternalError",
            "MessageTypeNotSupported",
            "NotImplemented",
            "NotSupported",
            "OccurrenceConstraintViolation",
            "PropertyConstraintViolation",
            "ProtocolError",
            "RpcFrameworkError",
            "SecurityError",
            "TypeConstraintViolation",
        }
    ),
}

M = TypeVar("M", bound=BaseModel)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the SG stand-in -------------------------------------------------------------


class StandInSG:
    """Plays the SG's side of the bus: decides, commands, and is watched.

    Decisions: chargers whose id starts with ``unknown`` are refused as
    unknown, a password of ``WRONG_PASSWORD`` as bad credentials; Authorize
    for ``SILENT_TOKEN`` is never answered; everything else is accepted.
    2.0.1 transactions keep the charger's id, have every id token they carry
    accepted, cost ``RUNNING_COST`` while updated and ``TOTAL_COST`` when
    ended; 2.0.1 requests other than DataTransfer are NotImplemented, as in
    the real SG.
    """

    def __init__(self, bus: BusClient) -> None:
        self.bus = bus
        self.requests: asyncio.Queue[EventEnvelope] = asyncio.Queue()

    async def start(self) -> None:
        queue = await self.bus.channel.declare_queue(
            self.bus.topology.decisions, durable=True, arguments=QUORUM
        )
        await queue.consume(self._on_request)

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        async with message.process():
            envelope = EventEnvelope.model_validate_json(message.body)
            self.requests.put_nowait(envelope)
            decision = self.decide(envelope)
            if decision is None or message.reply_to is None:
                return
            await self.bus.channel.default_exchange.publish(
                aio_pika.Message(
                    DecisionEnvelope(decision=decision).model_dump_json().encode(),
                    correlation_id=message.correlation_id,
                ),
                routing_key=message.reply_to,
            )

    def decide(self, envelope: EventEnvelope) -> Decision | None:
        event = envelope.event
        accepted = IdTokenInfo(status=AuthorizationStatus.ACCEPTED)
        match event.kind:
            case "connecting":
                assert isinstance(event, ChargerConnecting)
                if envelope.charger_id.startswith("unknown"):
                    return ConnectDecision(accepted=False, reason="unknown")
                if event.password == WRONG_PASSWORD:
                    return ConnectDecision(accepted=False, reason="password")
                return ConnectDecision(accepted=True)
            case "boot":
                return BootDecision(
                    status=RegistrationStatus.ACCEPTED,
                    interval_s=300,
                    current_time=BOOT_TIME,
                )
            case "authorize":
                if getattr(event, "id_token", None) == SILENT_TOKEN:
                    return None
                return AuthorizeDecision(id_token_info=accepted)
            case "transaction_started":
                assert isinstance(event, TransactionStarted)
                if event.transaction_id is not None:  # 2.0.1: the charger's
                    judged = None if event.id_token is None else accepted
                    return StartDecision(
                        transaction_id=event.transaction_id, id_token_info=judged
                    )
                return StartDecision(transaction_id="42", id_token_info=accepted)
            case "transaction_updated":
                assert isinstance(event, TransactionUpdated)
                judged = None if event.id_token is None else accepted
                return TransactionDecision(
                    id_token_info=judged, total_cost=RUNNING_COST
                )
            case "transaction_ended":
                assert isinstance(event, TransactionEnded)
                if envelope.ocpp_version is OcppVersion.V201:
                    judged = None if event.id_token is None else accepted
                    return StopDecision(id_token_info=judged, total_cost=TOTAL_COST)
                return StopDecision()
            case "ocpp":
                assert isinstance(event, OcppMessage)
                if (
                    envelope.ocpp_version is OcppVersion.V201
                    and event.action != "DataTransfer"
                ):
                    return DecisionError(
                        code="NotImplemented",
                        description=f"{event.action} is not supported",
                    )
                return OcppReply(payload={"status": "Accepted"})
            case _:
                return OcppReply(payload={"status": "Accepted"})

    async def next_request(self, kind: str) -> EventEnvelope:
        """Return the next decision request of ``kind``, skipping others."""
        async with asyncio.timeout(WAIT_S):
            while True:
                envelope = await self.requests.get()
                if envelope.event.kind == kind:
                    return envelope

    async def command(self, charger_id: str, command: Command) -> CommandEnvelope:
        envelope = CommandEnvelope(
            command_id=str(uuid.uuid4()),
            charger_id=charger_id,
            task_token=base64.b64encode(b"task").decode(),
            command=command,
        )
        await self.bus.publish_command(
            charger_id,
            envelope.model_dump_json().encode(),
            correlation_id=envelope.command_id,
        )
        return envelope


class Inbox:
    """Everything published to one queue, consumed as it arrives."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self._bodies: asyncio.Queue[bytes] = asyncio.Queue()

    async def start(self) -> "Inbox":
        await self.queue.consume(self._on_message, no_ack=True)
        return self

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._bodies.put_nowait(message.body)

    async def next(self, model: type[M]) -> M:
        async with asyncio.timeout(WAIT_S):
            return model.model_validate_json(await self._bodies.get())

    async def next_event(self, kind: str) -> EventEnvelope:
        async with asyncio.timeout(WAIT_S):
            while True:
                envelope = await self.next(EventEnvelope)
                if envelope.event.kind == kind:
                    return envelope

    def received(self, model: type[M]) -> list[M]:
        """Return everything received and not yet read, without waiting."""
        bodies: list[bytes] = []
        while not self._bodies.empty():
            bodies.append(self._bodies.get_nowait())
        return [model.model_validate_json(body) for body in bodies]


# -- the charger -----------------------------------------------------------------


class Charger(ChargePoint):  # type: ignore[misc]
    """A 1.6 charge point that accepts remote starts and records them."""

    def __init__(self, charger_id: str, ws: ClientConnection) -> None:
        super().__init__(charger_id, ws, response_timeout=WAIT_S)
        self.ws = ws
        self.remote_starts: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    @on(Action.remote_start_transaction)  # type: ignore[untyped-decorator]
    async def on_remote_start(
        self, id_tag: str, **kwargs: Any
    ) -> call_result.RemoteStartTransaction:
        self.remote_starts.put_nowait({"id_tag": id_tag, **kwargs})
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)


class Charger201(v201.ChargePoint):  # type: ignore[misc]
    """A 2.0.1 charging station that records the CSMS's calls and accepts them.

    It answers RequestStartTransaction with transaction ``tx-remote``,
    RequestStopTransaction with Accepted, and GetVariables with
    ``HEARTBEAT_INTERVAL`` for every variable asked.
    """

    HEARTBEAT_INTERVAL = "300"

    def __init__(self, charger_id: str, ws: ClientConnection) -> None:
        super().__init__(charger_id, ws, response_timeout=WAIT_S)
        self.ws = ws
        self.calls: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def next_call(self) -> tuple[str, dict[str, Any]]:
        """Return the next call the CSMS made, as (action, snake_case kwargs)."""
        async with asyncio.timeout(WAIT_S):
            return await self.calls.get()

    @on(Action201.request_start_transaction)  # type: ignore[untyped-decorator]
    async def on_request_start(
        self, **kwargs: Any
    ) -> v201.call_result.RequestStartTransaction:
        self.calls.put_nowait(("RequestStartTransaction", kwargs))
        return v201.call_result.RequestStartTransaction(
            status="Accepted", transaction_id="tx-remote"
        )

    @on(Action201.request_stop_transaction)  # type: ignore[untyped-decorator]
    async def on_request_stop(
        self, **kwargs: Any
    ) -> v201.call_result.RequestStopTransaction:
        self.calls.put_nowait(("RequestStopTransaction", kwargs))
        return v201.call_result.RequestStopTransaction(status="Accepted")

    @on(Action201.get_variables)  # type: ignore[untyped-decorator]
    async def on_get_variables(
        self, get_variable_data: list[dict[str, Any]], **kwargs: Any
    ) -> v201.call_result.GetVariables:
        self.calls.put_nowait(
            ("GetVariables", {"get_variable_data": get_variable_data, **kwargs})
        )
        return v201.call_result.GetVariables(
            get_variable_result=[
                {
                    "attribute_status": "Accepted",
                    "attribute_value": self.HEARTBEAT_INTERVAL,
                    "component": data["component"],
                    "variable": data["variable"],
                }
                for data in get_variable_data
            ]
        )


# -- fixtures --------------------------------------------------------------------


@pytest.fixture
async def topology() -> AsyncIterator[Topology]:
    """A bus prefix of this test's own; its durable names are deleted after."""
    names = Topology(f"test-{uuid.uuid4().hex[:12]}")
    yield names
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in names.durable_queues:
            await channel.queue_delete(queue)
        await channel.exchange_delete(names.commands_exchange)


@pytest.fixture
async def sg(topology: Topology) -> AsyncIterator[StandInSG]:
    async with BusClient(AMQP_URL, topology) as bus:
        stand_in = StandInSG(bus)
        await stand_in.start()
        yield stand_in


@pytest.fixture
async def events(sg: StandInSG) -> Inbox:
    queue = await sg.bus.channel.get_queue(sg.bus.topology.events)
    return await Inbox(queue).start()


@pytest.fixture
async def results(sg: StandInSG) -> Inbox:
    queue = await sg.bus.channel.get_queue(sg.bus.topology.results)
    return await Inbox(queue).start()


class Gateways:
    """Gateways of one test, each ``run_gateway`` in a task of the test's loop."""

    def __init__(self, topology: Topology) -> None:
        self.topology = topology
        self.tasks: dict[str, asyncio.Task[None]] = {}

    async def start(self, **overrides: Any) -> Settings:
        """Start a gateway with settings overrides; return once it listens."""
        values: dict[str, Any] = {
            "amqp_url": AMQP_URL,
            "bus_prefix": self.topology.prefix,
            "gateway_id": f"gw-{uuid.uuid4().hex[:8]}",
            "gateway_host": "127.0.0.1",
            "gateway_port": free_port(),
            "gateway_path": "/ocpp/",
            "decision_timeout_s": WAIT_S,
            "call_timeout_s": WAIT_S,
        }
        settings = Settings(**(values | overrides))
        ready = asyncio.Event()
        task = asyncio.create_task(run_gateway(settings, ready=ready))
        self.tasks[settings.gateway_id] = task
        readiness = asyncio.create_task(ready.wait())
        async with asyncio.timeout(WAIT_S):
            await asyncio.wait({task, readiness}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            readiness.cancel()
            await task  # raises the gateway's start-up failure
        return settings

    def stop(self, settings: Settings) -> None:
        """Cancel a gateway, as a process manager would."""
        self.tasks[settings.gateway_id].cancel()

    async def stop_all(self) -> None:
        for task in self.tasks.values():
            task.cancel()
        for task in self.tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task


@pytest.fixture
async def gateways(topology: Topology, sg: StandInSG) -> AsyncIterator[Gateways]:
    running = Gateways(topology)
    yield running
    await running.stop_all()


@pytest.fixture
async def gateway(gateways: Gateways) -> Settings:
    return await gateways.start()


def url(settings: Settings, charger_id: str) -> str:
    return f"ws://127.0.0.1:{settings.gateway_port}{settings.gateway_path}{charger_id}"


@contextlib.asynccontextmanager
async def charger(settings: Settings, charger_id: str) -> AsyncIterator[Charger]:
    """Connect a 1.6 charge point and serve its side until the block ends."""
    async with websockets.connect(url(settings, charger_id), subprotocols=OCPP16) as ws:
        charge_point = Charger(charger_id, ws)
        serving = asyncio.create_task(charge_point.start())
        try:
            # An answered call means the gateway holds the charger's binding.
            await charge_point.call(call.Heartbeat())
            yield charge_point
        finally:
            serving.cancel()
            with contextlib.suppress(
                asyncio.CancelledError, websockets.ConnectionClosed
            ):
                await serving


@contextlib.asynccontextmanager
async def charger201(settings: Settings, charger_id: str) -> AsyncIterator[Charger201]:
    """Connect a 2.0.1 charging station and serve its side until the block ends."""
    async with websockets.connect(
        url(settings, charger_id), subprotocols=OCPP201
    ) as ws:
        assert ws.subprotocol == "ocpp2.0.1"
        station = Charger201(charger_id, ws)
        serving = asyncio.create_task(station.start())
        try:
            # An answered call means the gateway holds the charger's binding.
            await station.call(v201.call.Heartbeat())
            yield station
        finally:
            serving.cancel()
            with contextlib.suppress(
                asyncio.CancelledError, websockets.ConnectionClosed
            ):
                await serving


@contextlib.asynccontextmanager
async def raw_socket(
    settings: Settings, charger_id: str, subprotocols: list[Subprotocol] = OCPP16
) -> AsyncIterator[ClientConnection]:
    """Connect a bare WebSocket, 1.6 unless told; ready once a Heartbeat is answered."""
    async with websockets.connect(
        url(settings, charger_id), subprotocols=subprotocols
    ) as ws:
        await ws.send('[2,"ready","Heartbeat",{}]')
        answer = json.loads(await recv(ws))
        assert answer[:2] == [3, "ready"], answer
        yield ws


async def recv(ws: ClientConnection) -> str:
    async with asyncio.timeout(WAIT_S):
        frame = await ws.recv()
    assert isinstance(frame, str)
    return frame


async def refused_status(settings: Settings, charger_id: str, **kwargs: Any) -> int:
    with pytest.raises(InvalidStatus) as refused:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(url(settings, charger_id), **kwargs)
    return refused.value.response.status_code


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}
