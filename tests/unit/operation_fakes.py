"""Harness of the operation workflow tests: fake activities and a worker.

``OperationFakes`` registers in-memory ``send_command`` and
``find_reservation_use`` under the real activity names; each OCPP action
gets the answer ``answers`` names (Accepted by default), and ``gate`` holds
every command until a test opens it.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.types import SEND_COMMAND, CommandRequest
from bus.contract import CommandOutcome, CommandResult, OcppCall
from workflows.calls import CHARGER_OFFLINE
from workflows.firmware import FirmwareUpdate, LogUpload
from workflows.operation_types import (
    FIND_RESERVATION_USE,
    ReservationInput,
    ReservationUse,
    ReservationUseQuery,
)
from workflows.reservation import Reservation

Answer = Callable[[CommandRequest], CommandResult]
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def answered(status: str | None, **payload: Any) -> Answer:
    """Answer every command with ``status`` (None: an answer without one)."""

    def answer(request: CommandRequest) -> CommandResult:
        body = dict(payload)
        if status is not None:
            body["status"] = status
        return CommandResult(
            command_id=request.command_id,
            charger_id=request.charger_id,
            outcome=CommandOutcome.ANSWERED,
            status=status,
            payload=body,
        )

    return answer


def offline(request: CommandRequest) -> CommandResult:
    raise ApplicationError("offline", type=CHARGER_OFFLINE, non_retryable=True)


class OperationFakes:
    """In-memory stand-ins for the activities the operation workflows call."""

    def __init__(self) -> None:
        self.commands: list[OcppCall] = []
        self.requested_by: list[str] = []
        self.answers: dict[str, Answer] = {}
        self.queries: list[ReservationUseQuery] = []
        self.use: ReservationUse | None = None
        self.gate = asyncio.Event()
        self.gate.set()

    @activity.defn(name=SEND_COMMAND)
    async def send_command(self, request: CommandRequest) -> CommandResult:
        await self.gate.wait()
        assert isinstance(request.command, OcppCall)
        self.commands.append(request.command)
        self.requested_by.append(request.requested_by)
        answer = self.answers.get(request.command.action, answered("Accepted"))
        return answer(request)

    @activity.defn(name=FIND_RESERVATION_USE)
    async def find_reservation_use(
        self, query: ReservationUseQuery
    ) -> ReservationUse | None:
        self.queries.append(query)
        return self.use

    @property
    def actions(self) -> list[str]:
        return [command.action for command in self.commands]


@pytest.fixture
def fakes() -> OperationFakes:
    return OperationFakes()


@pytest_asyncio.fixture
async def worker(
    env: WorkflowEnvironment, fakes: OperationFakes
) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=f"operations-{uuid.uuid4().hex[:8]}",
        workflows=[Reservation, FirmwareUpdate, LogUpload],
        activities=[fakes.send_command, fakes.find_reservation_use],
    ) as running:
        yield running


async def now(env: WorkflowEnvironment) -> datetime:
    """Return the test server's time (it skips ahead)."""
    return await env.get_current_time()


def reservation_input(
    expires_at: datetime, *, connector_id: int = 1, reservation_id: int | None = None
) -> ReservationInput:
    number = reservation_id or uuid.uuid4().int % 1_000_000
    return ReservationInput(
        reservation_id=number,
        charger_id="CP-1",
        connector_id=connector_id,
        id_token="TAG-1",
        expires_at=expires_at,
        reserve=OcppCall(
            action="ReserveNow",
            payload={
                "connectorId": connector_id,
                "expiryDate": expires_at.isoformat(),
                "idTag": "TAG-1",
                "reservationId": number,
            },
        ),
        cancel=OcppCall(action="CancelReservation", payload={"reservationId": number}),
        requested_by="op",
    )


def in_minutes(moment: datetime, minutes: float) -> datetime:
    return moment + timedelta(minutes=minutes)
