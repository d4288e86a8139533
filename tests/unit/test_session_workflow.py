"""ChargeSession on the time-skipping test server, with in-memory activities.

The activities are fakes registered under the real activity names: what is
under test is the workflow (its steps, timers, idempotency and state).

``MOOVOLT_RECORD_HISTORIES=1`` writes the histories of these runs to
``tests/histories/`` for ``test_replay.py``.
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
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
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
    RecordStartInput,
    RecordStateInput,
    RecordStopInput,
    TakePaymentInput,
    measure,
)
from billing.payments import PaymentReceipt, PaymentStatus
from billing.tariff import TariffSnapshot, price
from bus.contract import (
    AuthorizationStatus,
    CommandOutcome,
    CommandResult,
    IdTokenInfo,
    RemoteStart,
    RemoteStop,
)
from workflows.session import ChargeSession
from workflows.types import (
    CHARGER_ID,
    ID_TOKEN,
    METER_PROGRESS,
    REMOTE_START_RESULT,
    REQUEST_STOP,
    SESSION_STATE,
    TRANSACTION_ENDED,
    TRANSACTION_STARTED,
    VIEW,
    MeterProgress,
    SessionInput,
    SessionProgress,
    SessionState,
    SessionTimeouts,
    SessionView,
    StopRequest,
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
    raise ApplicationError("offline", type="ChargerOffline", non_retryable=True)


@pytest_asyncio.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(TEST_SERVER),
    )
    keyword = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    await environment.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=environment.client.namespace,
            search_attributes={
                key.name: keyword for key in (CHARGER_ID, ID_TOKEN, SESSION_STATE)
            },
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
        start or started(input.id_token),
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


# -- Charger-initiated ---------------------------------------------------------


async def test_charger_session_is_billed(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input()
    handle, info = await start_by_charger(env, worker, input, search_attributes=False)
    assert info.status is AuthorizationStatus.ACCEPTED

    await handle.signal(
        METER_PROGRESS,
        MeterProgress(energy_register_wh=Decimal(7000), sampled_at=T0),
    )
    running = await view(handle)
    assert running.progress.state is SessionState.CHARGING
    assert running.energy_wh in (Decimal(0), Decimal(6000))

    verdict = await handle.execute_update(
        TRANSACTION_ENDED, ended("13500"), result_type=IdTokenInfo
    )
    assert verdict == info
    progress = await finish(handle, "charger_session_billed")

    # 12.5 kWh over 30 minutes: 3.75 + 1.50 + 1.00 = 6.25, VAT 1.44.
    expected = price(TARIFF, Decimal(12500), 1800)
    assert expected.total_incl_vat == Decimal("7.69")
    assert progress.state is SessionState.BILLED
    assert progress.payment_status == PaymentStatus.CAPTURED
    cdr = fakes.cdrs[input.session_id]
    assert (cdr.energy_wh, cdr.duration_s, cdr.cost) == (Decimal(12500), 1800, expected)
    assert progress.cdr_id == cdr.id
    [payment] = fakes.payments.values()
    assert payment.idempotency_key == f"payment-{handle.id}"
    assert payment.amount == Decimal("7.69")
    assert fakes.states == [
        SessionState.CHARGING,
        SessionState.STOPPED,
        SessionState.BILLED,
    ]
    assert (await view(handle)).cost == expected
    description = await handle.describe()
    attributes = description.typed_search_attributes
    assert attributes.get(SESSION_STATE) == SessionState.BILLED.value
    assert attributes.get(CHARGER_ID) == "CP-1"
    assert attributes.get(ID_TOKEN) == GOOD


async def test_rejected_token_is_still_billed(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input(id_token=BAD)
    handle, info = await start_by_charger(env, worker, input)
    assert info.status is AuthorizationStatus.INVALID
    assert (await view(handle)).progress.state is SessionState.REJECTED

    await handle.execute_update(TRANSACTION_ENDED, ended("1500"))
    progress = await finish(handle, "rejected_token_billed")

    assert progress.state is SessionState.BILLED
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(500)


async def test_duplicate_updates_change_nothing(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input()
    handle, first = await start_by_charger(env, worker, input)
    again = await handle.execute_update(
        TRANSACTION_STARTED, started(meter="999999"), result_type=IdTokenInfo
    )
    assert again == first
    assert (await view(handle)).progress.meter_start_wh == Decimal(1000)

    fakes.payment_gate.clear()  # keep the session open after the stop
    stop = await handle.execute_update(
        TRANSACTION_ENDED, ended("6000"), result_type=IdTokenInfo
    )
    repeat = await handle.execute_update(
        TRANSACTION_ENDED, ended("999999", minutes=90), result_type=IdTokenInfo
    )
    assert repeat == stop
    fakes.payment_gate.set()
    progress = await finish(handle, "duplicate_updates")

    assert progress.meter_stop_wh == Decimal(6000)
    assert fakes.calls[AUTHORIZE] == 1
    assert fakes.calls[RECORD_START] == 1
    assert fakes.calls[RECORD_STOP] == 1
    assert fakes.calls[WRITE_CDR] == 1
    assert fakes.calls[TAKE_PAYMENT] == 1
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(5000)


async def test_request_stop_sends_remote_stop(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input()
    handle, _ = await start_by_charger(env, worker, input)

    result = await handle.execute_update(
        REQUEST_STOP, StopRequest(requested_by="alice"), result_type=CommandResult
    )
    assert result.accepted
    [request] = fakes.commands
    assert request.command == RemoteStop(transaction_id=input.transaction_id)
    assert request.requested_by == "alice"
    # The session stays open until the charger's StopTransaction.
    assert (await view(handle)).progress.state is SessionState.CHARGING

    fakes.answer = offline
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(REQUEST_STOP, StopRequest(requested_by="alice"))
    assert isinstance(failed.value.cause, ApplicationError)
    assert failed.value.cause.type == "ChargerOffline"

    fakes.payment_gate.clear()
    await handle.execute_update(TRANSACTION_ENDED, ended("2000"))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(REQUEST_STOP, StopRequest(requested_by="alice"))
    assert isinstance(refused.value.cause, ApplicationError)
    assert refused.value.cause.type == "SessionNotRunning"
    fakes.payment_gate.set()
    assert (await finish(handle, "request_stop")).state is SessionState.BILLED


# -- Operator-initiated --------------------------------------------------------


async def start_by_operator(
    env: WorkflowEnvironment, worker: Worker, input: SessionInput
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        ChargeSession.run,
        input,
        id=session_workflow_id(input.charger_id, input.transaction_id),
        task_queue=worker.task_queue,
    )


async def test_remote_start_accepted_then_started(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input(origin="operator")
    handle = await start_by_operator(env, worker, input)
    result = await handle.execute_update(REMOTE_START_RESULT, result_type=CommandResult)
    assert result.accepted
    [request] = fakes.commands
    assert request.command == RemoteStart(
        connector_id=1, id_token=GOOD, remote_start_id=input.session_id
    )
    assert (await view(handle)).progress.state is SessionState.REMOTE_START_REQUESTED

    _, info = await start_by_charger(env, worker, input)
    assert info.status is AuthorizationStatus.ACCEPTED
    await handle.execute_update(TRANSACTION_ENDED, ended("4000"))
    progress = await finish(handle, "remote_start_billed")

    assert progress.state is SessionState.BILLED
    assert progress.remote_start == result
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(3000)


@pytest.mark.parametrize("answer", [answered("Rejected"), offline])
async def test_remote_start_rejected(
    env: WorkflowEnvironment,
    worker: Worker,
    fakes: Fakes,
    answer: Callable[[CommandRequest], CommandResult],
) -> None:
    fakes.answer = answer
    input = session_input(origin="operator")
    handle = await start_by_operator(env, worker, input)

    if answer is offline:
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(REMOTE_START_RESULT)
        assert isinstance(failed.value.cause, ApplicationError)
        assert failed.value.cause.type == "ChargerOffline"
    else:
        result = await handle.execute_update(
            REMOTE_START_RESULT, result_type=CommandResult
        )
        assert result.status == "Rejected"

    record_as = "remote_start_rejected" if answer is not offline else "offline"
    progress = await finish(handle, record_as)
    assert progress.state is SessionState.REMOTE_START_REJECTED
    assert fakes.states == [SessionState.REMOTE_START_REJECTED]
    assert fakes.cdrs == {} and fakes.payments == {}
    assert await state_attribute(handle) == SessionState.REMOTE_START_REJECTED.value


async def test_remote_start_that_never_starts(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input(origin="operator")
    handle = await start_by_operator(env, worker, input)
    result = await handle.execute_update(REMOTE_START_RESULT, result_type=CommandResult)
    assert result.accepted

    progress = await finish(handle, "never_started")

    assert progress.state is SessionState.NEVER_STARTED
    assert fakes.states == [SessionState.NEVER_STARTED]
    assert fakes.cdrs == {}


# -- Timers --------------------------------------------------------------------


async def test_silence_and_back(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input()
    handle, _ = await start_by_charger(env, worker, input)

    await env.sleep(TIMEOUTS.meter_silence_s + 5)
    await eventually_state(handle, SessionState.SILENT)
    assert fakes.calls[READ_PROGRESS] == 1
    assert await state_attribute(handle) == SessionState.SILENT.value

    await handle.signal(
        METER_PROGRESS,
        MeterProgress(energy_register_wh=Decimal(3000), sampled_at=T0),
    )
    back = await eventually_state(handle, SessionState.CHARGING)
    assert back.progress.last_register_wh == Decimal(3000)

    # Samples that reached PostgreSQL without a signal also count.
    fakes.progress = MeterProgress(
        energy_register_wh=Decimal(4000), sampled_at=T0 + timedelta(minutes=20)
    )
    await env.sleep(TIMEOUTS.meter_silence_s + 5)
    found = await eventually_state(handle, SessionState.CHARGING)
    assert fakes.calls[READ_PROGRESS] == 2
    assert found.progress.last_register_wh == Decimal(4000)

    await handle.execute_update(TRANSACTION_ENDED, ended("5000"))
    progress = await finish(handle, "silence")
    assert progress.state is SessionState.BILLED
    assert fakes.states == [
        SessionState.CHARGING,
        SessionState.SILENT,
        SessionState.CHARGING,
        SessionState.STOPPED,
        SessionState.BILLED,
    ]


async def test_max_duration_closes_and_bills(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    timeouts = SessionTimeouts(
        remote_start_s=180, meter_silence_s=3600, max_duration_s=4 * 3600
    )
    input = session_input(timeouts=timeouts)
    handle, _ = await start_by_charger(env, worker, input)
    await handle.signal(
        METER_PROGRESS,
        MeterProgress(energy_register_wh=Decimal(9000), sampled_at=T0),
    )

    # Only handles from start_workflow skip time while awaiting the result.
    await env.sleep(timeouts.max_duration_s + 60)
    progress = await finish(handle, "max_duration")

    assert progress.state is SessionState.BILLED
    assert progress.stop_reason == "MaxDurationExceeded"
    assert progress.meter_stop_wh == Decimal(9000)
    assert fakes.stops[0].reason == "MaxDurationExceeded"
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(8000)


async def test_continue_as_new_carries_progress(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input(max_history_events=40)
    handle, info = await start_by_charger(env, worker, input)
    first_run = (await handle.describe()).run_id

    for n in range(1, 16):
        await handle.signal(
            METER_PROGRESS,
            MeterProgress(
                energy_register_wh=Decimal(1000 + 100 * n),
                sampled_at=T0 + timedelta(minutes=n),
            ),
        )
        await asyncio.sleep(0.02)
    for _ in range(100):
        if (await handle.describe()).run_id != first_run:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the session never continued as new")

    carried = await view(handle)
    assert carried.progress.id_token_info == info
    assert carried.progress.meter_start_wh == Decimal(1000)
    assert carried.progress.last_register_wh is not None
    assert carried.progress.last_register_wh > Decimal(1000)
    repeat = await handle.execute_update(
        TRANSACTION_STARTED, started(), result_type=IdTokenInfo
    )
    assert repeat == info

    if RECORD:
        first = env.client.get_workflow_handle(handle.id, run_id=first_run)
        history = await first.fetch_history()
        await save("continue_as_new", history.to_json())
    await handle.execute_update(TRANSACTION_ENDED, ended("3000"))
    progress = await finish(handle, "continued_billed")

    assert progress.state is SessionState.BILLED
    assert fakes.calls[AUTHORIZE] == 1
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(2000)
