"""Commands to one charger outside any session, each its own workflow.

The API starts one ``ChargerCommand`` workflow per command (id
``command-<uuid>``), which sends it through the audited ``send_command``
activity and returns the charger's answer; these helpers turn that answer,
or its absence, into an HTTP answer.
"""

import asyncio
import logging
from datetime import timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.exceptions import TimeoutError as WorkflowTimeout
from temporalio.service import RPCError

from api.commands import (
    CHARGER_OFFLINE,
    UPDATE_MARGIN_S,
    charger_offline,
    charger_timeout,
    check_answer,
    unavailable_from,
)
from api.problems import ProblemError
from api.temporal_link import TemporalLink
from bus.contract import CommandOutcome, CommandResult, OcppCall, OcppVersion
from moovolt.settings import Settings
from store.models import Charger, Operator
from workflows.types import (
    CHARGER_COMMAND,
    CHARGER_ID,
    CommandInput,
    command_workflow_id,
)

logger = logging.getLogger(__name__)

# A command workflow nobody runs (no worker) gives up after this long.
COMMAND_DEADLINE = timedelta(minutes=5)

ItemT = TypeVar("ItemT")

# What to use instead, by the OCPP version a route is not for.
INSTEAD: dict[str, str] = {
    OcppVersion.V16: "OCPP 1.6 has no device model: use configuration/get and "
    "configuration/change (GetConfiguration / ChangeConfiguration).",
    OcppVersion.V201: "OCPP 2.0.1 has no configuration keys: use variables/get "
    "and variables/set (GetVariables / SetVariables).",
}


async def charger_speaking(
    db: AsyncSession, charger_id: str, version: OcppVersion
) -> Charger:
    """Return the charger, unless it is unknown or speaks another version.

    A charger that never connected has no version yet and is let through:
    the command then finds it offline.

    Raises:
        ProblemError: 404 unknown charger, 409 another OCPP version.
    """
    charger = await db.get(Charger, charger_id)
    if charger is None:
        raise ProblemError(404, "Not Found", f"No charger {charger_id}.")
    if charger.ocpp_version not in (None, version.value):
        raise ProblemError(
            409,
            "wrong OCPP version",
            f"Charger {charger_id} speaks OCPP {charger.ocpp_version}. "
            + INSTEAD.get(charger.ocpp_version, ""),
            kind="wrong-ocpp-version",
            ocpp_version=charger.ocpp_version,
        )
    return charger


async def run_command(
    temporal: TemporalLink,
    settings: Settings,
    operator: Operator,
    charger_id: str,
    call: OcppCall,
) -> tuple[str, CommandResult]:
    """Run ``call`` as a ChargerCommand workflow; return its id and the answer.

    Raises:
        ProblemError: Temporal is down (503), the charger is offline (409) or
            did not answer in time (504), the command failed (502).
    """
    client = await temporal.client()
    workflow_id = command_workflow_id()
    extra = {"workflow_id": workflow_id}
    logger.info(
        "%s requested",
        call.action,
        extra={"charger_id": charger_id, **extra, "by": operator.name},
    )

    try:
        async with asyncio.timeout(settings.call_timeout_s + UPDATE_MARGIN_S):
            result: CommandResult = await client.execute_workflow(
                CHARGER_COMMAND,
                CommandInput(
                    charger_id=charger_id, command=call, requested_by=operator.name
                ),
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
                result_type=CommandResult,
                execution_timeout=COMMAND_DEADLINE,
                search_attributes=TypedSearchAttributes(
                    [SearchAttributePair(CHARGER_ID, charger_id)]
                ),
            )
    except TimeoutError as exc:
        raise charger_timeout(charger_id, **extra) from exc
    except WorkflowFailureError as exc:
        raise _command_failure(exc, charger_id, extra) from exc
    except RPCError as exc:
        raise unavailable_from(exc) from exc
    return workflow_id, result


def _command_failure(
    exc: WorkflowFailureError, charger_id: str, extra: dict[str, Any]
) -> ProblemError:
    cause = exc.cause
    if isinstance(cause, ApplicationError) and cause.type == CHARGER_OFFLINE:
        return charger_offline(charger_id, **extra)
    if isinstance(cause, WorkflowTimeout) or (
        isinstance(cause, ApplicationError) and cause.type and "Timeout" in cause.type
    ):
        return charger_timeout(charger_id, **extra)
    logger.warning(
        "command workflow failed: %s", cause, extra={"charger_id": charger_id, **extra}
    )
    return ProblemError(
        502,
        "command failed",
        "The command could not be sent to the charger.",
        kind="command-failed",
        **extra,
    )


def require_answer(result: CommandResult, **extra: Any) -> None:
    """Raise unless the charger answered (whatever it answered).

    Raises:
        ProblemError: the charger was offline, silent, could not or erred.
    """
    if result.outcome is not CommandOutcome.ANSWERED:
        check_answer(result, **extra)


def parse_answer(
    adapter: TypeAdapter[list[ItemT]], result: CommandResult, key: str, **extra: Any
) -> list[ItemT]:
    """Return the list ``key`` of the charger's answer, as ``adapter`` reads it.

    Raises:
        ProblemError: 502 when the answer is not what the call promises.
    """
    try:
        return adapter.validate_python(result.payload.get(key, []))
    except ValidationError as exc:
        logger.warning(
            "unreadable answer from %s: %s",
            result.charger_id,
            exc,
            extra={"charger_id": result.charger_id},
        )
        raise ProblemError(
            502,
            "unreadable answer",
            f"Charger {result.charger_id} answered with an unexpected {key}.",
            kind="invalid-answer",
            answer=result.payload,
            **extra,
        ) from exc
