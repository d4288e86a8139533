"""Charger commands: one route per operator intent, for both OCPP versions.

Each route renders its body as the call of the charger's OCPP version
(``api.command_models``) and runs it as a ``ChargerCommand`` workflow of its
own (id ``command-<uuid>``) through the audited ``send_command`` activity,
as the device-model routes do. It answers with the charger's answer: 200
with its status and payload when the charger did it, else the problem of the
API's conventions (409 offline or refused, with the answer; 504 silent).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
)
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.charger_commands import run_command
from api.command_models import (
    AvailabilityChange,
    ClearCacheCommand,
    CommandBody,
    CommandPublic,
    DataTransferCreate,
    LocalListSend,
    LocalListVersionCommand,
    LocalListVersionPublic,
    ResetCreate,
    TriggerCreate,
    UnlockCreate,
)
from api.commands import charger_offline, check_answer, unavailable_from
from api.deps import OperatorDep, SessionDep, SettingsDep, TemporalDep
from api.problems import ProblemError, documented
from api.smart_charging_models import (
    ChargingProfileClear,
    ChargingProfileSet,
    CompositeScheduleGet,
    CompositeSchedulePublic,
    ProfilePurpose,
    RateUnit,
    composite_schedule,
)
from api.temporal_link import TemporalLink
from bus.contract import CommandOutcome, CommandResult, OcppVersion
from moovolt.settings import Settings
from store.models import Charger, Operator
from workflows.operation_types import VIEW
from workflows.types import CHARGER_ID

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/chargers", tags=["chargers"])

COMMAND_ERRORS = documented(401, 403, 404, 409, 422, 501, 502, 503, 504)
# A query of a workflow whose worker is away fails after this long.
QUERY_TIMEOUT = timedelta(seconds=10)

ViewT = TypeVar("ViewT", bound=BaseModel)


# -- Shared by the operation routes ------------------------------------------------


async def charger_version(db: AsyncSession, charger_id: str) -> OcppVersion:
    """Return the OCPP version the charger last connected with.

    Raises:
        ProblemError: 404 unknown charger; 409 offline when it never
            connected (no version to speak to it in).
    """
    charger = await db.get(Charger, charger_id)
    if charger is None:
        raise ProblemError(404, "Not Found", f"No charger {charger_id}.")
    if charger.ocpp_version is None:
        raise charger_offline(charger_id, reason="never connected")
    return OcppVersion(charger.ocpp_version)


def check_status(
    result: CommandResult, ok: frozenset[str | None], **extra: Any
) -> None:
    """Raise unless the charger answered with one of the ``ok`` statuses.

    Raises:
        ProblemError: offline or refused (409), silent (504), ... as
            ``check_answer`` words it, with the answer.
    """
    if result.outcome is CommandOutcome.ANSWERED and result.status in ok:
        return
    check_answer(result, **extra)


async def start_operation(
    temporal: TemporalLink,
    settings: Settings,
    workflow: str,
    input: BaseModel,
    *,
    workflow_id: str,
    charger_id: str,
    result_type: type[ViewT],
    run_timeout: timedelta,
) -> WorkflowHandle[Any, ViewT]:
    """Start an operation's workflow, findable by ``ChargerId``.

    Raises:
        ProblemError: 409 when the workflow runs already, 503 when Temporal
            does not answer.
    """
    client = await temporal.client()
    try:
        handle: WorkflowHandle[Any, ViewT] = await client.start_workflow(
            workflow,
            input,
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
            result_type=result_type,
            execution_timeout=run_timeout,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(CHARGER_ID, charger_id)]
            ),
        )
    except WorkflowAlreadyStartedError as exc:
        raise ProblemError(
            409,
            "already running",
            f"{workflow} {workflow_id} is still running; wait for its end.",
            kind="operation-running",
            workflow_id=workflow_id,
        ) from exc
    except RPCError as exc:
        raise unavailable_from(exc) from exc
    return handle


async def read_view(
    handle: WorkflowHandle[Any, ViewT], result_type: type[ViewT]
) -> ViewT:
    """Return the view of an operation's workflow: queried, or its result.

    Raises:
        ProblemError: 404 no such workflow, 502 it ended abnormally, 503
            Temporal (or the workflow's worker) does not answer.
    """
    try:
        described = await handle.describe()
        if described.status is WorkflowExecutionStatus.RUNNING:
            view: ViewT = await handle.query(
                VIEW, result_type=result_type, rpc_timeout=QUERY_TIMEOUT
            )
            return view
        if described.status is WorkflowExecutionStatus.COMPLETED:
            return await handle.result()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ProblemError(404, "Not Found", f"No {handle.id}.") from exc
        raise unavailable_from(exc) from exc
    except WorkflowQueryFailedError as exc:
        raise ProblemError(
            502, "workflow failed", str(exc), kind="workflow-failed"
        ) from exc
    status = described.status.name if described.status else "unknown"
    raise ProblemError(
        502,
        "workflow failed",
        f"{handle.id} ended {status}.",
        kind="workflow-failed",
        workflow_id=handle.id,
    )


# -- Sending one command -----------------------------------------------------------


@dataclass
class Sender:
    """Send commands to chargers for the operator of one request."""

    db: AsyncSession
    settings: Settings
    temporal: TemporalLink
    operator: Operator

    async def send(
        self, charger_id: str, command: CommandBody
    ) -> tuple[OcppVersion, CommandPublic]:
        """Send ``command`` in the charger's version; return the answer.

        Raises:
            ProblemError: unknown charger (404), offline or refused (409),
                silent (504), Temporal away (503), ...
        """
        version = await charger_version(self.db, charger_id)
        call = command.call(version)
        workflow_id, result = await run_command(
            self.temporal, self.settings, self.operator, charger_id, call
        )
        check_status(result, command.OK, workflow_id=workflow_id, action=call.action)
        return version, CommandPublic(
            workflow_id=workflow_id,
            action=call.action,
            ocpp_version=version.value,
            outcome=result.outcome,
            status=result.status,
            payload=result.payload,
        )

    async def __call__(self, charger_id: str, command: CommandBody) -> CommandPublic:
        """Send ``command``; return the answer (see ``send``)."""
        _, answer = await self.send(charger_id, command)
        return answer


def _sender(
    db: SessionDep, settings: SettingsDep, temporal: TemporalDep, operator: OperatorDep
) -> Sender:
    return Sender(db, settings, temporal, operator)


SenderDep = Annotated[Sender, Depends(_sender)]


def _unreadable(answer: CommandPublic, what: str, exc: Exception) -> ProblemError:
    logger.warning("unreadable %s: %s", what, exc)
    return ProblemError(
        502,
        "unreadable answer",
        f"The charger answered with an unexpected {what}.",
        kind="invalid-answer",
        answer=answer.payload,
        workflow_id=answer.workflow_id,
    )


# -- Routes --------------------------------------------------------------------------


@router.post("/{charger_id}/reset", responses=COMMAND_ERRORS)
async def reset(charger_id: str, body: ResetCreate, send: SenderDep) -> CommandPublic:
    """Restart the charger (Reset).

    soft is 1.6 Soft / 2.0.1 OnIdle (once no transaction runs), hard is 1.6
    Hard / 2.0.1 Immediate. Accepted and Scheduled are answers.
    """
    return await send(charger_id, body)


@router.post("/{charger_id}/availability", responses=COMMAND_ERRORS)
async def change_availability(
    charger_id: str, body: AvailabilityChange, send: SenderDep
) -> CommandPublic:
    """Make a connector or the whole charger (in)operative (ChangeAvailability).

    For 2.0.1, ``connector_id`` is the EVSE and ``evse_connector_id`` one of
    its connectors. Accepted and Scheduled are answers.
    """
    return await send(charger_id, body)


@router.post("/{charger_id}/unlock", responses=COMMAND_ERRORS)
async def unlock_connector(
    charger_id: str, body: UnlockCreate, send: SenderDep
) -> CommandPublic:
    """Unlock a connector's cable (UnlockConnector); Unlocked is the answer."""
    return await send(charger_id, body)


@router.post("/{charger_id}/trigger", responses=COMMAND_ERRORS)
async def trigger_message(
    charger_id: str, body: TriggerCreate, send: SenderDep
) -> CommandPublic:
    """Have the charger send a message now (TriggerMessage)."""
    return await send(charger_id, body)


@router.post("/{charger_id}/clear-cache", responses=COMMAND_ERRORS)
async def clear_cache(charger_id: str, send: SenderDep) -> CommandPublic:
    """Empty the charger's authorization cache (ClearCache)."""
    return await send(charger_id, ClearCacheCommand())


@router.post("/{charger_id}/data-transfer", responses=COMMAND_ERRORS)
async def data_transfer(
    charger_id: str, body: DataTransferCreate, send: SenderDep
) -> CommandPublic:
    """Send vendor-specific data (DataTransfer).

    The charger's data comes back in the payload; ``data`` is a string in 1.6.
    """
    return await send(charger_id, body)


@router.get("/{charger_id}/local-list", responses=COMMAND_ERRORS)
async def get_local_list_version(
    charger_id: str, send: SenderDep
) -> LocalListVersionPublic:
    """Ask for the version of the charger's local list (GetLocalListVersion)."""
    version, answer = await send.send(charger_id, LocalListVersionCommand())
    field = "listVersion" if version is OcppVersion.V16 else "versionNumber"
    number = answer.payload.get(field)
    if not isinstance(number, int):
        raise _unreadable(answer, field, TypeError(repr(number)))
    return LocalListVersionPublic(**answer.model_dump(), version=number)


@router.post("/{charger_id}/local-list", responses=COMMAND_ERRORS)
async def send_local_list(
    charger_id: str, body: LocalListSend, send: SenderDep
) -> CommandPublic:
    """Replace or change the charger's local list (SendLocalList).

    Full replaces the list, Differential changes it: a token without status
    is removed.
    """
    return await send(charger_id, body)


@router.post("/{charger_id}/charging-profiles", responses=COMMAND_ERRORS)
async def set_charging_profile(
    charger_id: str, body: ChargingProfileSet, send: SenderDep
) -> CommandPublic:
    """Install a charging profile (SetChargingProfile)."""
    return await send(charger_id, body)


@router.delete("/{charger_id}/charging-profiles", responses=COMMAND_ERRORS)
async def clear_charging_profiles(
    charger_id: str,
    send: SenderDep,
    id: Annotated[int | None, Query(ge=1)] = None,
    connector_id: Annotated[int | None, Query(ge=0)] = None,
    purpose: ProfilePurpose | None = None,
    stack_level: Annotated[int | None, Query(ge=0)] = None,
) -> CommandPublic:
    """Remove charging profiles (ClearChargingProfile).

    The profile ``id``, or all those matching the other parameters; Unknown
    (none matched) is a 409.
    """
    command = ChargingProfileClear(
        id=id, connector_id=connector_id, purpose=purpose, stack_level=stack_level
    )
    return await send(charger_id, command)


async def _composite(
    charger_id: str, command: CompositeScheduleGet, send: Sender
) -> CompositeSchedulePublic:
    version, answer = await send.send(charger_id, command)
    try:
        schedule = composite_schedule(version, answer.payload)
    except (ValidationError, AttributeError, TypeError) as exc:
        raise _unreadable(answer, "schedule", exc) from exc
    return CompositeSchedulePublic(**answer.model_dump(), schedule=schedule)


@router.get("/{charger_id}/composite-schedule", responses=COMMAND_ERRORS)
async def get_composite_schedule(
    charger_id: str,
    send: SenderDep,
    duration: Annotated[int, Query(ge=1, le=7 * 24 * 3600)],
    connector_id: Annotated[int, Query(ge=0)] = 0,
    charging_rate_unit: RateUnit | None = None,
) -> CompositeSchedulePublic:
    """Ask for the schedule the charger will follow (GetCompositeSchedule).

    The next ``duration`` seconds of it, in the same words for both versions.
    """
    command = CompositeScheduleGet(
        connector_id=connector_id,
        duration=duration,
        charging_rate_unit=charging_rate_unit,
    )
    return await _composite(charger_id, command, send)


@router.post("/{charger_id}/composite-schedule", responses=COMMAND_ERRORS)
async def request_composite_schedule(
    charger_id: str, body: CompositeScheduleGet, send: SenderDep
) -> CompositeSchedulePublic:
    """Ask for the composite schedule, the parameters in a body."""
    return await _composite(charger_id, body, send)
