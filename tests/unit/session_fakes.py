"""Harness of ``test_session_workflow``: fake activities and the test server.

``Fakes`` registers in-memory activities under the real activity names. The
fixtures here are imported by name into the test module, where pytest looks
for them.
"""

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio import activity
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.types import (
    AUTHORIZE,
    READ_PROGRESS,
    RECORD_ID_TOKEN,
    RECORD_START,
    RECORD_STATE,
    RECORD_STOP,
    SEND_COMMAND,
    TAKE_PAYMENT,
    WRITE_CDR,
    AuthorizeInput,
    CdrInput,
    CdrRecord,
    CommandRequest,
    ReadProgressInput,
    RecordIdTokenInput,
    RecordStartInput,
    RecordStateInput,
    RecordStopInput,
    TakePaymentInput,
    measure,
)
from billing.payments import PaymentReceipt, PaymentStatus
from billing.tariff import TariffSnapshot
from bus.contract import (
    AuthorizationStatus,
    CommandOutcome,
    CommandResult,
    IdTokenInfo,
)
from temporal.search_attributes import SEARCH_ATTRIBUTES
from workflows.calls import CHARGER_OFFLINE
from workflows.session import ChargeSession
from workflows.types import (
    CHARGER_ID,
    ID_TOKEN,
    SESSION_STATE,
    TRANSACTION_STARTED,
    VIEW,
    MeterProgress,
    SessionInput,
    SessionProgress,
    SessionState,
    SessionTimeouts,
    SessionView,
    TransactionEndedInput,
    TransactionStartedInput,
    session_workflow_id,
)

ROOT = Path(__file__).resolve().parents[2]
TEST_SERVER = ROOT / ".venv" / "bin" / "temporal-test-server"
HISTORIES = ROOT / "tests" / "histories"
RECORD = os.environ.get("MOOVOLT_RECORD_HISTORIES") == "1"

TARIFF = TariffSnapshot(
    id=1,
    name="standard",
    currency="EUR",
    price_per_kwh=Decimal("0.30"),
    price_per_minute=Decimal("0.05"),
    price_per_session=Decimal("1.00"),
    vat_percent=Decimal("23"),
)
TIMEOUTS = SessionTimeouts(
    remote_start_s=180, meter_silence_s=900, max_duration_s=7 * 24 * 3600
)
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
GOOD, BAD = "04A1B2C3", "DEADBEEF"


class Fakes:
    """In-memory stand-ins for the session and command activities."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.states: list[SessionState] = []
        self.tokens: list[str] = []
        self.starts: list[RecordStartInput] = []
        self.stops: list[RecordStopInput] = []
        self.cdrs: dict[int, CdrRecord] = {}
        self.payments: dict[str, PaymentReceipt] = {}
        self.commands: list[CommandRequest] = []
        self.progress: MeterProgress | None = None
        self.payment_gate = asyncio.Event()
        self.payment_gate.set()
        self.answer: Callable[[CommandRequest], CommandResult] = accepted

    def all(self) -> list[Callable[..., Awaitable[Any]]]:
        return [
            self.authorize,
            self.record_start,
            self.record_stop,
            self.record_state,
            self.record_id_token,
            self.read_progress,
            self.write_cdr,
            self.take_payment,
            self.send_command,
        ]

    @activity.defn(name=AUTHORIZE)
    async def authorize(self, input: AuthorizeInput) -> IdTokenInfo:
        self.calls[AUTHORIZE] += 1
        if input.id_token == GOOD:
            return IdTokenInfo(status=AuthorizationStatus.ACCEPTED)
        return IdTokenInfo(status=AuthorizationStatus.INVALID)

    @activity.defn(name=RECORD_START)
    async def record_start(self, input: RecordStartInput) -> None:
        self.calls[RECORD_START] += 1
        self.starts.append(input)
        self.states.append(input.state)

    @activity.defn(name=RECORD_ID_TOKEN)
    async def record_id_token(self, input: RecordIdTokenInput) -> None:
        self.calls[RECORD_ID_TOKEN] += 1
        self.tokens.append(input.id_token)
        self.states.append(input.state)

    @activity.defn(name=RECORD_STOP)
    async def record_stop(self, input: RecordStopInput) -> None:
        self.calls[RECORD_STOP] += 1
        self.stops.append(input)
        self.states.append(SessionState.STOPPED)

    @activity.defn(name=RECORD_STATE)
    async def record_state(self, input: RecordStateInput) -> None:
        self.calls[RECORD_STATE] += 1
        self.states.append(input.state)

    @activity.defn(name=READ_PROGRESS)
    async def read_progress(self, input: ReadProgressInput) -> MeterProgress | None:
        self.calls[READ_PROGRESS] += 1
        return self.progress

    @activity.defn(name=WRITE_CDR)
    async def write_cdr(self, input: CdrInput) -> CdrRecord:
        self.calls[WRITE_CDR] += 1
        figures = measure(
            input.tariff,
            input.meter_start_wh,
            input.meter_stop_wh,
            input.started_at,
            input.stopped_at,
        )
        record = CdrRecord(id=f"cdr-{input.workflow_id}", **figures.model_dump())
        return self.cdrs.setdefault(input.session_id, record)

    @activity.defn(name=TAKE_PAYMENT)
    async def take_payment(self, input: TakePaymentInput) -> PaymentReceipt:
        self.calls[TAKE_PAYMENT] += 1
        await self.payment_gate.wait()
        cdr = next(c for c in self.cdrs.values() if c.id == input.cdr_id)
        amount = cdr.cost.total_incl_vat
        receipt = PaymentReceipt(
            idempotency_key=input.idempotency_key,
            cdr_id=cdr.id,
            provider="fake",
            amount=amount,
            currency=cdr.cost.currency,
            status=PaymentStatus.CAPTURED if amount else PaymentStatus.WAIVED,
        )
        return self.payments.setdefault(input.idempotency_key, receipt)

    @activity.defn(name=SEND_COMMAND)
    async def send_command(self, request: CommandRequest) -> CommandResult:
        self.calls[SEND_COMMAND] += 1
        self.commands.append(request)
        return self.answer(request)


def answered(status: str) -> Callable[[CommandRequest], CommandResult]:
    def answer(request: CommandRequest) -> CommandResult:
        return CommandResult(
            command_id=request.command_id,
            charger_id=request.charger_id,
            outcome=CommandOutcome.ANSWERED,
            status=status,
        )

    return answer


accepted = answered("Accepted")


def offline(request: CommandRequest) -> CommandResult:
    raise ApplicationError("offline", type=CHARGER_OFFLINE, non_retryable=True)


@pytest_asyncio.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
    )
    # The time-skipping server cannot list search attributes, which
    # ensure_search_attributes needs: add the same names directly.
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=environment.client.namespace,
            search_attributes={name: keyword for name in SEARCH_ATTRIBUTES},
        )
    )
    yield environment
    await environment.shutdown()


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


@pytest_asyncio.fixture
async def worker(env: WorkflowEnvironment, fakes: Fakes) -> AsyncIterator[Worker]:
    async with Worker(
        env.client,
        task_queue=f"sessions-{uuid.uuid4().hex[:8]}",
        workflows=[ChargeSession],
        activities=fakes.all(),
    ) as running:
        yield running


def session_input(
    *,
    origin: str = "charger",
    id_token: str = GOOD,
    timeouts: SessionTimeouts = TIMEOUTS,
    max_history_events: int = 2000,
) -> SessionInput:
    session_id = int(uuid.uuid4().int % 1_000_000_000)
    return SessionInput(
        session_id=session_id,
        charger_id="CP-1",
        transaction_id=str(session_id),
        connector_id=1 if origin == "operator" else None,
        id_token=id_token,
        origin="operator" if origin == "operator" else "charger",
        tariff=TARIFF,
        timeouts=timeouts,
        max_history_events=max_history_events,
    )


def started(id_token: str = GOOD, meter: str = "1000") -> TransactionStartedInput:
    return TransactionStartedInput(
        connector_id=1, id_token=id_token, meter_start_wh=Decimal(meter), timestamp=T0
    )


def ended(meter: str, minutes: int = 30) -> TransactionEndedInput:
    return TransactionEndedInput(
        meter_stop_wh=Decimal(meter),
        timestamp=T0 + timedelta(minutes=minutes),
        id_token=GOOD,
        reason="Local",
    )


async def start_by_charger(
    env: WorkflowEnvironment,
    worker: Worker,
    input: SessionInput,
    *,
    search_attributes: bool = True,
    start: TransactionStartedInput | None = None,
) -> tuple[WorkflowHandle[Any, Any], IdTokenInfo]:
    """Start a session the way ingress does: update-with-start."""
    attributes = TypedSearchAttributes(
        [
            SearchAttributePair(CHARGER_ID, input.charger_id),
            SearchAttributePair(ID_TOKEN, input.id_token),
            SearchAttributePair(SESSION_STATE, SessionState.AUTHORIZING.value),
        ]
    )
    workflow_id = session_workflow_id(input.charger_id, input.transaction_id)
    operation = WithStartWorkflowOperation(
        ChargeSession.run,
        input,
        id=workflow_id,
        task_queue=worker.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=attributes if search_attributes else None,
    )
    info: IdTokenInfo = await env.client.execute_update_with_start_workflow(
        TRANSACTION_STARTED,
        start or started(input.id_token or GOOD),
        start_workflow_operation=operation,
        result_type=IdTokenInfo,
    )
    handle = env.client.get_workflow_handle(workflow_id, result_type=SessionProgress)
    return handle, info


async def view(handle: WorkflowHandle[Any, Any]) -> SessionView:
    result: SessionView = await handle.query(VIEW, result_type=SessionView)
    return result


async def eventually_state(
    handle: WorkflowHandle[Any, Any], state: SessionState
) -> SessionView:
    """Poll the view until the session is in ``state``."""
    for _ in range(100):
        current = await view(handle)
        if current.progress.state is state:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"session never became {state}, is {current.progress}")


async def save(name: str, history: str) -> None:
    path = HISTORIES / f"{name}.json"
    await asyncio.to_thread(path.write_text, history)


async def finish(handle: WorkflowHandle[Any, Any], record_as: str) -> SessionProgress:
    """Wait for the session's end; record its history if asked to."""
    progress = SessionProgress.model_validate(await handle.result())
    if RECORD:
        history = await handle.fetch_history()
        await save(record_as, history.to_json())
    return progress


async def state_attribute(handle: WorkflowHandle[Any, Any]) -> str | None:
    description = await handle.describe()
    return description.typed_search_attributes.get(SESSION_STATE)


async def start_by_operator(
    env: WorkflowEnvironment, worker: Worker, input: SessionInput
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ChargeSession.run,
        input,
        id=session_workflow_id(input.charger_id, input.transaction_id),
        task_queue=worker.task_queue,
    )
