"""How ChargeSession calls its activities: timeouts, retries, typed errors.

Workflow-side only: every function here must be awaited inside a workflow.
Activities are called by name, so no database or bus code enters the
workflow sandbox.
"""

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
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
    )
    from billing.payments import PaymentReceipt, payment_key
    from bus.contract import Command, CommandResult, IdTokenInfo
    from workflows.types import MeterProgress, SessionState

CHARGER_OFFLINE = "ChargerOffline"
COMMAND_TIMEOUT_ERROR = "CommandTimeout"
COMMAND_FAILED = "CommandFailed"
PAYMENT_DECLINED = "PaymentDeclined"

# PostgreSQL work: retried until the database answers again.
DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
)
# The gateway answers TIMEOUT after its call_timeout_s (30 s); allow the hops.
COMMAND_TIMEOUT = timedelta(seconds=40)
# A repeated RemoteStart could start a second charge: never retried.
REMOTE_START_RETRY = RetryPolicy(maximum_attempts=1)
# A command that could not be published (the broker reconnecting) or whose
# gateway vanished is tried again, four tries in all, 1, 2 and 4 s apart. A
# charger's own "no answer" comes back as a result and is not retried.
COMMAND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_attempts=4,
    non_retryable_error_types=[CHARGER_OFFLINE],
)
# Money: retried for as long as it takes, at most every ten minutes.
PAYMENT_TIMEOUT = timedelta(seconds=60)
PAYMENT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    non_retryable_error_types=[PAYMENT_DECLINED],
)


async def _db(name: str, arg: Any, result_type: type | None = None) -> Any:
    return await workflow.execute_activity(
        name,
        arg,
        result_type=result_type,
        start_to_close_timeout=DB_TIMEOUT,
        retry_policy=DB_RETRY,
    )


async def authorize(id_token: str, id_token_type: str | None = None) -> IdTokenInfo:
    """Return the verdict on ``id_token`` now."""
    info: IdTokenInfo = await _db(
        AUTHORIZE,
        AuthorizeInput(
            id_token=id_token, at=workflow.now(), id_token_type=id_token_type
        ),
        IdTokenInfo,
    )
    return info


async def record_id_token(session_id: int, id_token: str, state: SessionState) -> None:
    """Write a token presented after the start into the session row."""
    await _db(
        RECORD_ID_TOKEN,
        RecordIdTokenInput(session_id=session_id, id_token=id_token, state=state),
    )


async def record_start(input: RecordStartInput) -> None:
    """Write the start into the session row."""
    await _db(RECORD_START, input)


async def record_stop(input: RecordStopInput) -> None:
    """Write the stop into the session row."""
    await _db(RECORD_STOP, input)


async def record_state(session_id: int, state: SessionState) -> None:
    """Write the session's state into its row."""
    await _db(RECORD_STATE, RecordStateInput(session_id=session_id, state=state))


async def read_progress(charger_id: str, transaction_id: str) -> MeterProgress | None:
    """Return the newest meter data stored for the transaction, if any."""
    progress: MeterProgress | None = await _db(
        READ_PROGRESS,
        ReadProgressInput(charger_id=charger_id, transaction_id=transaction_id),
        MeterProgress,
    )
    return progress


async def write_cdr(input: CdrInput) -> CdrRecord:
    """Write the session's CDR (once) and return it."""
    cdr: CdrRecord = await _db(WRITE_CDR, input, CdrRecord)
    return cdr


async def take_payment(cdr_id: str) -> PaymentReceipt | None:
    """Take the payment of the CDR; None when the provider declined it.

    The idempotency key is derived from the workflow id, so the session is
    charged once whatever happens to this activity.
    """
    try:
        receipt: PaymentReceipt = await workflow.execute_activity(
            TAKE_PAYMENT,
            TakePaymentInput(
                cdr_id=cdr_id, idempotency_key=payment_key(workflow.info().workflow_id)
            ),
            result_type=PaymentReceipt,
            start_to_close_timeout=PAYMENT_TIMEOUT,
            retry_policy=PAYMENT_RETRY,
        )
    except ActivityError as exc:
        if _error_type(exc) == PAYMENT_DECLINED:
            return None
        raise
    return receipt


async def send_command(
    charger_id: str, command: Command, requested_by: str, retry: RetryPolicy
) -> CommandResult:
    """Send ``command`` and return the charger's answer.

    Raises:
        ApplicationError: non-retryable, of type ``ChargerOffline`` when no
            gateway holds the charger, ``CommandTimeout`` when no answer came
            in time, ``CommandFailed`` otherwise.
    """
    request = CommandRequest(
        command_id=str(workflow.uuid4()),
        charger_id=charger_id,
        command=command,
        requested_by=requested_by,
    )
    try:
        result: CommandResult = await workflow.execute_activity(
            SEND_COMMAND,
            request,
            result_type=CommandResult,
            start_to_close_timeout=COMMAND_TIMEOUT,
            retry_policy=retry,
        )
    except ActivityError as exc:
        if _error_type(exc) == CHARGER_OFFLINE:
            raise ApplicationError(
                f"charger {charger_id} is offline",
                type=CHARGER_OFFLINE,
                non_retryable=True,
            ) from exc
        timed_out = isinstance(exc.cause, ActivityTimeout)
        raise ApplicationError(
            f"{command.kind} got no answer",
            type=COMMAND_TIMEOUT_ERROR if timed_out else COMMAND_FAILED,
            non_retryable=True,
        ) from exc
    return result


def _error_type(exc: ActivityError) -> str | None:
    cause = exc.cause
    return cause.type if isinstance(cause, ApplicationError) else None
