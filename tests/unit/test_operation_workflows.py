"""Reservation, FirmwareUpdate and LogUpload on the time-skipping test server.

The activities are fakes (``operation_fakes``); what is under test is each
workflow: the command it sends, the answer it hands the API, the durable
timer of a reservation and the deadline of an operation, and how signals
from the ingress (a start on the reservation, the charger's status
notifications) end it.
"""

import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bus.contract import CommandOutcome, CommandResult, OcppCall
from tests.unit.operation_fakes import (
    OperationFakes,
    answered,
    fakes,
    in_minutes,
    now,
    offline,
    reservation_input,
    worker,
)
from tests.unit.session_fakes import env
from workflows.calls import CHARGER_OFFLINE
from workflows.operation_types import (
    ANSWER,
    CANCEL,
    CHARGER_STATUS,
    FIRMWARE_UPDATE,
    LOG_UPLOAD,
    RESERVATION,
    RESERVATION_NOT_ACTIVE,
    USED,
    VIEW,
    CancelRequest,
    OperationInput,
    OperationState,
    OperationView,
    ReservationInput,
    ReservationState,
    ReservationUse,
    ReservationView,
    StatusNotice,
    reservation_workflow_id,
)

__all__ = ["env", "fakes", "worker"]  # fixtures


async def reserve(
    env: WorkflowEnvironment, worker: Worker, input: ReservationInput
) -> tuple[WorkflowHandle[Any, ReservationView], CommandResult]:
    """Start a reservation the way the API does; return it and the answer."""
    handle = await env.client.start_workflow(
        RESERVATION,
        input,
        id=reservation_workflow_id(input.charger_id, input.reservation_id),
        task_queue=worker.task_queue,
        result_type=ReservationView,
    )
    answer = await handle.execute_update(ANSWER, result_type=CommandResult)
    return handle, answer


async def reservation_view(handle: WorkflowHandle[Any, Any]) -> ReservationView:
    view: ReservationView = await handle.query(VIEW, result_type=ReservationView)
    return view


# -- Reservation -----------------------------------------------------------------


async def test_reservation_is_used_by_a_start(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    input = reservation_input(in_minutes(await now(env), 30))
    handle, answer = await reserve(env, worker, input)
    assert (answer.outcome, answer.status) == (CommandOutcome.ANSWERED, "Accepted")
    assert (await reservation_view(handle)).state is ReservationState.RESERVED

    await handle.signal(
        USED,
        ReservationUse(
            transaction_id="42", id_token="TAG-1", connector_id=1, at=await now(env)
        ),
    )
    view = await handle.result()

    assert (view.state, view.transaction_id) == (ReservationState.USED, "42")
    assert fakes.commands == [input.reserve]
    assert fakes.queries == []  # the timer never fired
    assert view.answer == answer
    described = await handle.describe()
    memo = await described.memo()
    assert memo["reservation"]["state"] == "Used"


async def test_reservation_expires_on_its_timer(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    start = await now(env)
    input = reservation_input(in_minutes(start, 15))
    handle, _ = await reserve(env, worker, input)

    view = await handle.result()

    assert view.state is ReservationState.EXPIRED
    assert view.ended_at is not None and view.ended_at >= input.expires_at
    [query] = fakes.queries
    assert (query.charger_id, query.connector_id, query.id_token) == (
        "CP-1",
        1,
        "TAG-1",
    )
    assert query.since <= view.created_at and query.until == input.expires_at
    assert fakes.actions == ["ReserveNow"]


async def test_a_start_found_at_expiry_uses_the_reservation(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    start = await now(env)
    fakes.use = ReservationUse(
        transaction_id="7", id_token="TAG-1", connector_id=1, at=start
    )
    handle, _ = await reserve(env, worker, reservation_input(in_minutes(start, 5)))

    view = await handle.result()

    assert (view.state, view.transaction_id) == (ReservationState.USED, "7")


async def test_cancel_sends_cancel_reservation(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    input = reservation_input(in_minutes(await now(env), 30))
    fakes.gate.clear()  # ReserveNow not answered yet
    handle = await env.client.start_workflow(
        RESERVATION,
        input,
        id=reservation_workflow_id("CP-1", input.reservation_id),
        task_queue=worker.task_queue,
        result_type=ReservationView,
    )
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await handle.execute_update(
            CANCEL, CancelRequest(requested_by="ana"), result_type=CommandResult
        )
    fakes.gate.set()
    await handle.execute_update(ANSWER, result_type=CommandResult)

    result = await handle.execute_update(
        CANCEL, CancelRequest(requested_by="ana"), result_type=CommandResult
    )
    view = await handle.result()

    cause = early.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == RESERVATION_NOT_ACTIVE
    assert result.status == "Accepted"
    assert (view.state, view.reason) == (ReservationState.CANCELLED, "cancelled by ana")
    assert fakes.commands == [input.reserve, input.cancel]
    assert fakes.requested_by == ["op", "ana"]


async def test_a_refused_cancel_keeps_the_reservation(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["CancelReservation"] = answered("Rejected")
    handle, _ = await reserve(
        env, worker, reservation_input(in_minutes(await now(env), 10))
    )

    result = await handle.execute_update(
        CANCEL, CancelRequest(requested_by="ana"), result_type=CommandResult
    )
    assert result.status == "Rejected"
    assert (await reservation_view(handle)).state is ReservationState.RESERVED

    assert (await handle.result()).state is ReservationState.EXPIRED


@pytest.mark.parametrize(
    ("status", "state"),
    [("Expired", ReservationState.EXPIRED), ("Removed", ReservationState.CANCELLED)],
)
async def test_the_charger_ends_a_reservation(
    env: WorkflowEnvironment,
    worker: Worker,
    fakes: OperationFakes,
    status: str,
    state: ReservationState,
) -> None:
    handle, _ = await reserve(
        env, worker, reservation_input(in_minutes(await now(env), 30))
    )

    await handle.signal(
        CHARGER_STATUS,
        StatusNotice(
            action="ReservationStatusUpdate", status=status, at=await now(env)
        ),
    )
    view = await handle.result()

    assert (view.state, view.reason) == (state, f"{status} by the charger")
    assert fakes.queries == []


async def test_a_refused_reserve_now_ends_rejected(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["ReserveNow"] = answered("Occupied")
    handle, answer = await reserve(
        env, worker, reservation_input(in_minutes(await now(env), 30))
    )

    view = await handle.result()

    assert answer.status == "Occupied"
    assert (view.state, view.reason) == (ReservationState.REJECTED, "Occupied")
    assert fakes.actions == ["ReserveNow"]


async def test_an_offline_charger_fails_the_reservation(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["ReserveNow"] = offline
    input = reservation_input(in_minutes(await now(env), 30))

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await reserve(env, worker, input)
    handle = env.client.get_workflow_handle(
        reservation_workflow_id("CP-1", input.reservation_id),
        result_type=ReservationView,
    )
    view = await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CHARGER_OFFLINE
    assert (view.state, view.reason) == (ReservationState.FAILED, CHARGER_OFFLINE)


# -- FirmwareUpdate and LogUpload --------------------------------------------------

UPDATE_16 = OcppCall(
    action="UpdateFirmware",
    payload={
        "location": "https://fw.example/1.bin",
        "retrieveDate": "2026-03-01T08:00:00Z",
    },
)
GET_LOG = OcppCall(
    action="GetLog",
    payload={
        "logType": "DiagnosticsLog",
        "requestId": 7,
        "log": {"remoteLocation": "ftp://logs.example/"},
    },
)


async def operate(
    env: WorkflowEnvironment,
    worker: Worker,
    workflow: str,
    command: OcppCall,
    *,
    request_id: int | None = None,
    deadline_minutes: float = 60,
) -> WorkflowHandle[Any, OperationView]:
    input = OperationInput(
        charger_id="CP-1",
        command=command,
        requested_by="op",
        request_id=request_id,
        deadline=in_minutes(await now(env), deadline_minutes),
    )
    return await env.client.start_workflow(
        workflow,
        input,
        id=f"{workflow}-{uuid.uuid4().hex[:8]}",
        task_queue=worker.task_queue,
        result_type=OperationView,
    )


async def notify(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[Any, Any],
    action: str,
    *statuses: str,
    request_id: int | None = None,
) -> None:
    for status in statuses:
        notice = StatusNotice(
            action=action, status=status, request_id=request_id, at=await now(env)
        )
        await handle.signal(CHARGER_STATUS, notice)


async def test_firmware_update_follows_its_notifications(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["UpdateFirmware"] = answered(None)  # 1.6 answers {}
    handle = await operate(env, worker, FIRMWARE_UPDATE, UPDATE_16)
    answer = await handle.execute_update(ANSWER, result_type=CommandResult)
    assert (answer.outcome, answer.status) == (CommandOutcome.ANSWERED, None)

    await notify(
        env,
        handle,
        "FirmwareStatusNotification",
        "Downloading",
        "Downloaded",
        "Installing",
    )
    running = await handle.query(VIEW, result_type=OperationView)
    assert (running.state, running.status) == (OperationState.IN_PROGRESS, "Installing")
    await notify(env, handle, "FirmwareStatusNotification", "Installed")
    view = await handle.result()

    assert (view.state, view.status) == (OperationState.SUCCEEDED, "Installed")
    assert [s.status for s in view.statuses] == [
        "Downloading",
        "Downloaded",
        "Installing",
        "Installed",
    ]
    assert fakes.commands == [UPDATE_16]


async def test_notifications_that_overtake_the_answer_count(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.gate.clear()
    handle = await operate(env, worker, LOG_UPLOAD, GET_LOG, request_id=7)
    await notify(
        env, handle, "LogStatusNotification", "Uploading", "Uploaded", request_id=7
    )
    assert (await handle.query(VIEW, result_type=OperationView)).state is (
        OperationState.REQUESTED
    )

    fakes.gate.set()
    view = await handle.result()

    assert (view.state, view.status) == (OperationState.SUCCEEDED, "Uploaded")


async def test_statuses_of_another_request_are_ignored(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    handle = await operate(env, worker, LOG_UPLOAD, GET_LOG, request_id=7)
    await handle.execute_update(ANSWER, result_type=CommandResult)

    await notify(env, handle, "LogStatusNotification", "Uploaded", request_id=8)
    await notify(env, handle, "LogStatusNotification", "UploadFailure", request_id=7)
    view = await handle.result()

    assert (view.state, view.reason) == (OperationState.FAILED, "UploadFailure")
    assert [s.status for s in view.statuses] == ["UploadFailure"]


async def test_an_operation_without_final_status_times_out(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    handle = await operate(env, worker, FIRMWARE_UPDATE, UPDATE_16, deadline_minutes=90)
    await handle.execute_update(ANSWER, result_type=CommandResult)
    await notify(env, handle, "FirmwareStatusNotification", "Downloading")

    view = await handle.result()

    assert (view.state, view.status) == (OperationState.TIMED_OUT, "Downloading")
    assert view.ended_at is not None and view.ended_at >= view.deadline


async def test_a_refused_command_ends_rejected(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["GetLog"] = answered("Rejected")
    handle = await operate(env, worker, LOG_UPLOAD, GET_LOG, request_id=7)

    answer = await handle.execute_update(ANSWER, result_type=CommandResult)
    view = await handle.result()

    assert answer.status == "Rejected"
    assert (view.state, view.reason) == (OperationState.REJECTED, "Rejected")


async def test_an_offline_charger_fails_the_operation(
    env: WorkflowEnvironment, worker: Worker, fakes: OperationFakes
) -> None:
    fakes.answers["UpdateFirmware"] = offline
    handle = await operate(env, worker, FIRMWARE_UPDATE, UPDATE_16)

    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(ANSWER, result_type=CommandResult)
    view = await handle.result()

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == CHARGER_OFFLINE
    assert (view.state, view.reason) == (OperationState.FAILED, CHARGER_OFFLINE)
    assert view.answer is None
    assert view.ended_at is not None
