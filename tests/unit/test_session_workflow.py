"""ChargeSession on the time-skipping test server, with in-memory activities.

The activities are fakes registered under the real activity names: what is
under test is the workflow (its steps, timers, idempotency and state).

``MOOVOLT_RECORD_HISTORIES=1`` writes the histories of these runs to
``tests/histories/`` for ``test_replay.py``.
"""

import asyncio
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.types import (
    AUTHORIZE,
    READ_PROGRESS,
    RECORD_START,
    RECORD_STOP,
    TAKE_PAYMENT,
    WRITE_CDR,
    CommandRequest,
)
from billing.payments import PaymentStatus
from billing.tariff import price
from bus.contract import (
    AuthorizationStatus,
    CommandResult,
    IdTokenInfo,
    RemoteStart,
    RemoteStop,
)
from tests.unit.session_fakes import (
    BAD,
    GOOD,
    RECORD,
    T0,
    TARIFF,
    TIMEOUTS,
    Fakes,
    answered,
    ended,
    env,
    eventually_state,
    fakes,
    finish,
    offline,
    save,
    session_input,
    start_by_charger,
    start_by_operator,
    started,
    state_attribute,
    view,
    worker,
)
from workflows.types import (
    CHARGER_ID,
    ID_TOKEN,
    METER_PROGRESS,
    REMOTE_START_RESULT,
    REQUEST_STOP,
    SESSION_STATE,
    TRANSACTION_ENDED,
    TRANSACTION_STARTED,
    MeterProgress,
    SessionState,
    SessionTimeouts,
    StopRequest,
)

__all__ = ["env", "fakes", "worker"]  # fixtures


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
