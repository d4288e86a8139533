"""ChargeSession driven as a 2.0.1 charger drives it, on the time-skipping server.

2.0.1 transactions are named by the charger, may start before an id token is
presented, and may reach the SG out of order when a charger replays the
events it queued offline. The workflow must end each in the right state
with the right CDR.
"""

from datetime import timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import WithStartWorkflowOperation, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.types import AUTHORIZE, RECORD_ID_TOKEN, RECORD_STOP, WRITE_CDR
from billing.tariff import price
from bus.contract import AuthorizationStatus, IdTokenInfo, RemoteStop
from tests.unit.session_fakes import (
    BAD,
    GOOD,
    T0,
    TARIFF,
    TIMEOUTS,
    Fakes,
    env,
    fakes,
    finish,
    session_input,
    start_by_operator,
    view,
    worker,
)
from workflows.session import ChargeSession
from workflows.types import (
    ID_TOKEN,
    REMOTE_START_RESULT,
    REQUEST_STOP,
    TRANSACTION_ENDED,
    TRANSACTION_STARTED,
    TRANSACTION_UPDATED,
    SessionInput,
    SessionState,
    StopRequest,
    TransactionEndedInput,
    TransactionStartedInput,
    TransactionUpdatedInput,
    TransactionVerdict,
    session_workflow_id,
)

__all__ = ["env", "fakes", "worker"]  # fixtures

TX = "b1f0c5d2-8c1e-4f7e-9a53-0c2d8e1f4a77"


def charger_input(**changes: Any) -> SessionInput:
    """A session a 2.0.1 charger opened: its own transaction id, no token."""
    base = session_input()
    return base.model_copy(update={"transaction_id": TX, "id_token": None, **changes})


def started(
    id_token: str | None = None, meter: str | None = "1000"
) -> TransactionStartedInput:
    return TransactionStartedInput(
        connector_id=1,
        id_token=id_token,
        id_token_type=None if id_token is None else "ISO14443",
        meter_start_wh=None if meter is None else Decimal(meter),
        timestamp=T0,
        transaction_id=TX,
    )


def updated(
    minutes: int, register: str | None = None, id_token: str | None = None
) -> TransactionUpdatedInput:
    return TransactionUpdatedInput(
        timestamp=T0 + timedelta(minutes=minutes),
        id_token=id_token,
        id_token_type=None if id_token is None else "ISO14443",
        charging_state="Charging",
        register_wh=None if register is None else Decimal(register),
        sampled_at=None if register is None else T0 + timedelta(minutes=minutes),
    )


def ended(
    meter: str | None, minutes: int = 30, **changes: Any
) -> TransactionEndedInput:
    return TransactionEndedInput(
        meter_stop_wh=None if meter is None else Decimal(meter),
        timestamp=T0 + timedelta(minutes=minutes),
        reason="EVDisconnected",
        **changes,
    )


async def update_with_start(
    env: WorkflowEnvironment,
    worker: Worker,
    input: SessionInput,
    update: str,
    arg: Any,
    result_type: Any,
) -> tuple[WorkflowHandle[Any, Any], Any]:
    """Send ``update`` the way the ingress does, opening the session if new."""
    workflow_id = session_workflow_id(input.charger_id, input.transaction_id)
    operation = WithStartWorkflowOperation(
        ChargeSession.run,
        input,
        id=workflow_id,
        task_queue=worker.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    result = await env.client.execute_update_with_start_workflow(
        update, arg, start_workflow_operation=operation, result_type=result_type
    )
    return env.client.get_workflow_handle(workflow_id), result


async def test_token_presented_after_the_start(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = charger_input()
    handle, info = await update_with_start(
        env, worker, input, TRANSACTION_STARTED, started(), IdTokenInfo | None
    )
    assert info is None
    assert (await view(handle)).progress.state is SessionState.AUTHORIZING

    verdict = await handle.execute_update(
        TRANSACTION_UPDATED,
        updated(1, register="1000", id_token=GOOD),
        result_type=TransactionVerdict,
    )
    assert verdict.id_token_info is not None
    assert verdict.id_token_info.status is AuthorizationStatus.ACCEPTED
    running = await view(handle)
    assert running.progress.state is SessionState.CHARGING
    assert running.progress.id_token == GOOD

    # The running cost is the CDR's price of what the session has so far.
    later = await handle.execute_update(
        TRANSACTION_UPDATED,
        updated(10, register="4000"),
        result_type=TransactionVerdict,
    )
    assert later.id_token_info is None
    assert later.total_cost == price(TARIFF, Decimal(3000), 600).total_incl_vat

    await handle.execute_update(TRANSACTION_ENDED, ended("7000"))
    progress = await finish(handle, "v201_token_after_start")

    assert progress.state is SessionState.BILLED
    assert fakes.tokens == [GOOD]
    assert fakes.calls[AUTHORIZE] == 1
    cdr = fakes.cdrs[input.session_id]
    assert cdr.energy_wh == Decimal(6000)
    assert cdr.cost == price(TARIFF, Decimal(6000), 1800)
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(ID_TOKEN) == GOOD


async def test_a_blocked_token_presented_late_rejects_the_session(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = charger_input()
    handle, _ = await update_with_start(
        env, worker, input, TRANSACTION_STARTED, started(), IdTokenInfo | None
    )
    verdict = await handle.execute_update(
        TRANSACTION_UPDATED, updated(1, id_token=BAD), result_type=TransactionVerdict
    )
    assert verdict.id_token_info is not None
    assert verdict.id_token_info.status is AuthorizationStatus.INVALID
    assert (await view(handle)).progress.state is SessionState.REJECTED

    await handle.execute_update(TRANSACTION_ENDED, ended("1000", minutes=2))
    progress = await finish(handle, "v201_rejected_late_token")
    assert progress.state is SessionState.BILLED
    assert fakes.states[:2] == [SessionState.AUTHORIZING, SessionState.REJECTED]


async def test_a_stop_before_its_start_waits_for_the_start(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = charger_input()
    handle, _ = await update_with_start(
        env,
        worker,
        input,
        TRANSACTION_ENDED,
        ended("9000", first_register_wh=Decimal(2000), first_sample_at=T0),
        IdTokenInfo | None,
    )
    # The start, queued behind the stop, arrives within the grace period.
    info = await handle.execute_update(
        TRANSACTION_STARTED, started(GOOD, meter="1000"), result_type=IdTokenInfo
    )
    assert info.status is AuthorizationStatus.ACCEPTED
    progress = await finish(handle, "v201_stop_before_start")

    assert progress.state is SessionState.BILLED
    cdr = fakes.cdrs[input.session_id]
    assert cdr.energy_wh == Decimal(8000)  # from the start's register, not 2000
    assert fakes.stops[-1].energy_wh == Decimal(8000)
    assert fakes.calls[WRITE_CDR] == 1


async def test_a_stop_whose_start_never_comes_bills_the_stored_readings(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = charger_input(timeouts=TIMEOUTS.model_copy(update={"start_grace_s": 30}))
    handle, _ = await update_with_start(
        env,
        worker,
        input,
        TRANSACTION_ENDED,
        ended(None, first_register_wh=Decimal(2000), first_sample_at=T0),
        IdTokenInfo | None,
    )
    await env.sleep(31)  # the grace period, in skipped time
    progress = await finish(handle, "v201_start_never_came")

    assert progress.state is SessionState.BILLED
    # No register at the stop, none later: the first stored one is all there is.
    assert progress.meter_start_wh == Decimal(2000)
    assert fakes.cdrs[input.session_id].duration_s == 1800
    assert fakes.calls[RECORD_STOP] == 1


async def test_updated_before_started(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = charger_input()
    handle, verdict = await update_with_start(
        env,
        worker,
        input,
        TRANSACTION_UPDATED,
        updated(5, register="3000", id_token=GOOD),
        TransactionVerdict,
    )
    assert verdict.id_token_info.status is AuthorizationStatus.ACCEPTED
    assert (await view(handle)).progress.state is SessionState.AUTHORIZING

    info = await handle.execute_update(
        TRANSACTION_STARTED, started(GOOD, meter="1000"), result_type=IdTokenInfo
    )
    assert info.status is AuthorizationStatus.ACCEPTED
    assert (await view(handle)).progress.state is SessionState.CHARGING
    assert fakes.calls[AUTHORIZE] == 2  # once for each message that carried it

    await handle.execute_update(TRANSACTION_ENDED, ended("5000"))
    progress = await finish(handle, "v201_updated_before_started")
    assert progress.state is SessionState.BILLED
    assert fakes.cdrs[input.session_id].energy_wh == Decimal(4000)
    assert fakes.calls[RECORD_ID_TOKEN] == 1


async def test_remote_start_learns_the_chargers_transaction_id(
    env: WorkflowEnvironment, worker: Worker, fakes: Fakes
) -> None:
    input = session_input(origin="operator")
    handle = await start_by_operator(env, worker, input)
    await handle.execute_update(REMOTE_START_RESULT)

    # The charger names the transaction; the session keeps its workflow id.
    await handle.execute_update(
        TRANSACTION_STARTED, started(GOOD), result_type=IdTokenInfo
    )
    await handle.execute_update(REQUEST_STOP, StopRequest(requested_by="alice"))
    assert fakes.commands[-1].command == RemoteStop(transaction_id=TX)

    await handle.execute_update(TRANSACTION_ENDED, ended("2000"))
    progress = await finish(handle, "v201_remote_start")
    assert progress.transaction_id == TX
    assert progress.state is SessionState.BILLED
