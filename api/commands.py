"""Talking to session workflows on behalf of an operator.

The workflow sends the command and waits for the charger; the API only turns
the outcome into an HTTP answer. Every charger answer that is not an
acceptance is an error response that still carries the answer.
"""

import asyncio
import logging
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.problems import ProblemError
from api.temporal_link import TemporalUnavailable
from bus.contract import CommandOutcome, CommandResult

logger = logging.getLogger(__name__)

# Typed failures of the session workflow's updates.
CHARGER_OFFLINE = "ChargerOffline"
COMMAND_FAILED = "CommandFailed"
SESSION_NOT_RUNNING = "SessionNotRunning"

# Beyond the gateway's own wait for the charger, allow this for the hops.
UPDATE_MARGIN_S = 15.0


def charger_offline(charger_id: str, **extra: Any) -> ProblemError:
    """Return the problem of a command for a charger no gateway holds."""
    return ProblemError(
        409,
        "charger offline",
        f"Charger {charger_id} is not connected to any gateway.",
        kind="charger-offline",
        **extra,
    )


def charger_timeout(charger_id: str, **extra: Any) -> ProblemError:
    """Return the problem of a charger that did not answer in time."""
    return ProblemError(
        504,
        "charger did not answer",
        f"Charger {charger_id} did not answer in time.",
        kind="charger-timeout",
        **extra,
    )


def unavailable_from(exc: RPCError) -> ProblemError:
    """Map an RPC failure to Temporal to a problem."""
    if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
        return TemporalUnavailable()
    logger.warning("temporal rpc failed: %s (%s)", exc.message, exc.status)
    return ProblemError(502, "Temporal error", exc.message, kind="temporal-error")


async def execute_update(
    handle: WorkflowHandle[Any, Any],
    update: str,
    *args: Any,
    charger_id: str,
    timeout_s: float,
    extra: dict[str, Any],
) -> CommandResult:
    """Run a command-carrying update and return the charger's answer.

    Args:
        handle: the session's workflow.
        update: the update's name.
        *args: the update's argument, if it has one.
        charger_id: for the error messages.
        timeout_s: how long the gateway waits for the charger.
        extra: extension members added to any problem raised.

    Returns:
        The charger's answer, whatever it was.

    Raises:
        ProblemError: the workflow refused the update, Temporal failed, or
            no answer came in time.
    """
    try:
        async with asyncio.timeout(timeout_s + UPDATE_MARGIN_S):
            result: CommandResult = await handle.execute_update(
                update, args=list(args), result_type=CommandResult
            )
            return result
    except TimeoutError as exc:
        raise charger_timeout(charger_id, **extra) from exc
    except WorkflowUpdateFailedError as exc:
        raise _update_failure(exc, charger_id, extra) from exc
    except RPCError as exc:
        raise unavailable_from(exc) from exc


def _update_failure(
    exc: WorkflowUpdateFailedError, charger_id: str, extra: dict[str, Any]
) -> ProblemError:
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == CHARGER_OFFLINE:
            return charger_offline(charger_id, **extra)
        if cause.type and "Timeout" in cause.type:
            return charger_timeout(charger_id, **extra)
        if cause.type == SESSION_NOT_RUNNING:
            return ProblemError(
                409,
                "session not running",
                cause.message,
                kind="session-not-running",
                **extra,
            )
        if cause.type == COMMAND_FAILED:
            return ProblemError(
                502, "command failed", cause.message, kind="command-failed", **extra
            )
        return ProblemError(
            409,
            "refused by the session",
            cause.message,
            kind="session-refused",
            reason=cause.type,
            **extra,
        )
    logger.warning("update failed: %s", cause)
    return ProblemError(
        502, "session workflow failed", str(cause), kind="workflow-failed", **extra
    )


def check_answer(result: CommandResult, **extra: Any) -> None:
    """Raise unless the charger accepted the command.

    The charger's answer goes into the problem body as ``answer``.

    Raises:
        ProblemError: the charger was offline, silent, refused or could not.
    """
    if result.accepted:
        return
    answer = {
        "answer": {
            "outcome": result.outcome.value,
            "status": result.status,
            "payload": result.payload,
            "error": result.error,
        },
        **extra,
    }
    match result.outcome:
        case CommandOutcome.DISCONNECTED:
            raise charger_offline(result.charger_id, **answer)
        case CommandOutcome.TIMEOUT:
            raise charger_timeout(result.charger_id, **answer)
        case CommandOutcome.NOT_SUPPORTED:
            raise ProblemError(
                501,
                "not supported by charger",
                "The charger's OCPP version has no such command.",
                kind="not-supported",
                **answer,
            )
        case CommandOutcome.CALL_ERROR:
            raise ProblemError(
                409,
                "rejected by charger",
                f"The charger answered with an error: {result.error or 'unknown'}.",
                kind="rejected-by-charger",
                **answer,
            )
        case _:
            raise ProblemError(
                409,
                "rejected by charger",
                f"The charger answered {result.status}.",
                kind="rejected-by-charger",
                **answer,
            )
