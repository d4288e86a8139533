"""ChargerCommand on the time-skipping test server, with a fake send_command.

What is under test is the workflow: it hands the command to the activity
once, returns the charger's answer as it came, and fails with the typed error
the API maps to a problem when the charger is offline or the command fails.
"""

import uuid
from collections.abc import Callable

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.commands import SECRET, redacted
from activities.types import SEND_COMMAND, CommandRequest
from bus.contract import CommandOutcome, CommandResult, OcppCall
from tests.unit.session_fakes import env
from workflows.calls import CHARGER_OFFLINE, COMMAND_FAILED, COMMAND_RETRY
from workflows.command import ChargerCommand
from workflows.types import CHARGER_COMMAND, CommandInput, command_workflow_id

__all__ = ["env"]  # a fixture

GET_VARIABLES = OcppCall(
    action="GetVariables",
    payload={
        "getVariableData": [
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    },
)


class FakeCommands:
    """``send_command`` answering with ``answer``; remembers every request."""

    def __init__(self, answer: Callable[[CommandRequest], CommandResult]) -> None:
        self.answer = answer
        self.requests: list[CommandRequest] = []

    @activity.defn(name=SEND_COMMAND)
    async def send_command(self, request: CommandRequest) -> CommandResult:
        self.requests.append(request)
        return self.answer(request)


def variables_answer(request: CommandRequest) -> CommandResult:
    return CommandResult(
        command_id=request.command_id,
        charger_id=request.charger_id,
        outcome=CommandOutcome.ANSWERED,
        payload={
            "getVariableResult": [
                {
                    "attributeStatus": "Accepted",
                    "attributeValue": "300",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                }
            ]
        },
    )


def offline(request: CommandRequest) -> CommandResult:
    raise ApplicationError("offline", type=CHARGER_OFFLINE, non_retryable=True)


def broken(request: CommandRequest) -> CommandResult:
    raise RuntimeError("the bus is gone")


async def run(env: WorkflowEnvironment, fake: FakeCommands) -> CommandResult:
    queue = f"commands-{uuid.uuid4().hex[:8]}"
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[ChargerCommand],
        activities=[fake.send_command],
    ):
        result: CommandResult = await env.client.execute_workflow(
            CHARGER_COMMAND,
            CommandInput(charger_id="CP-1", command=GET_VARIABLES, requested_by="op"),
            id=command_workflow_id(),
            task_queue=queue,
            result_type=CommandResult,
        )
    return result


async def test_returns_the_chargers_answer(env: WorkflowEnvironment) -> None:
    fake = FakeCommands(variables_answer)

    result = await run(env, fake)

    [request] = fake.requests
    assert (request.charger_id, request.command, request.requested_by) == (
        "CP-1",
        GET_VARIABLES,
        "op",
    )
    assert result.command_id == request.command_id
    assert result.outcome is CommandOutcome.ANSWERED
    assert result.payload["getVariableResult"][0]["attributeValue"] == "300"


async def test_offline_charger_fails_the_workflow_once(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeCommands(offline)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(env, fake)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == CHARGER_OFFLINE
    assert len(fake.requests) == 1


async def test_failing_activity_is_retried_then_fails_typed(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeCommands(broken)

    with pytest.raises(WorkflowFailureError) as failed:
        await run(env, fake)

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == COMMAND_FAILED
    assert len(fake.requests) == COMMAND_RETRY.maximum_attempts
    assert fake.requests[0].command_id == fake.requests[1].command_id


def test_credentials_are_not_audited() -> None:
    change = OcppCall(
        action="ChangeConfiguration",
        payload={"key": "AuthorizationKey", "value": "0011223344556677"},
    )
    assert redacted(change)["payload"] == {"key": "AuthorizationKey", "value": SECRET}
    set_variables = OcppCall(
        action="SetVariables",
        payload={
            "setVariableData": [
                {
                    "attributeValue": "s3cret-s3cret-s3cret",
                    "component": {"name": "SecurityCtrlr"},
                    "variable": {"name": "BasicAuthPassword"},
                },
                {
                    "attributeValue": "300",
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                },
            ]
        },
    )
    values = [
        item["attributeValue"]
        for item in redacted(set_variables)["payload"]["setVariableData"]
    ]
    assert values == [SECRET, "300"]
    # The command itself still carries the value to the charger.
    assert set_variables.payload["setVariableData"][0]["attributeValue"] != SECRET
