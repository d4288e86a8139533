"""Calls the CSMS makes to one charger: queued, one in flight, one result each.

OCPP-J lets a side have one CALL outstanding at a time, so commands for a
charger wait in order. Every submitted command ends in exactly one
``CommandResult``: answered, call_error, timeout, disconnected or
not_supported.
"""

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, validate_payload
from websockets.exceptions import ConnectionClosed

from bus.contract import CommandEnvelope, CommandOutcome, CommandResult
from spr_gateway.dialect import Dialect
from spr_gateway.errors import CommandNotSent
from spr_gateway.framing import call_frame, validation_text

logger = logging.getLogger(__name__)

Send = Callable[[str], Awaitable[None]]
PublishResult = Callable[[CommandResult], Awaitable[None]]

# The charger's answer to a call; None when the socket went away first.
Answer: TypeAlias = CallResult | CallError | None


class CommandRunner:
    """Run one charger's commands in order, one call in flight at a time.

    Args:
        charger_id: the charge point id of the connection.
        dialect: the connection's OCPP version.
        send: sends one frame to the charger.
        publish_result: publishes a finished command's result.
        call_timeout_s: how long the charger has to answer each call.
    """

    def __init__(
        self,
        charger_id: str,
        dialect: Dialect,
        send: Send,
        publish_result: PublishResult,
        call_timeout_s: float,
    ) -> None:
        self.charger_id = charger_id
        self.dialect = dialect
        self.call_timeout_s = call_timeout_s
        self._send = send
        self._publish_result = publish_result
        self._queue: asyncio.Queue[CommandEnvelope | None] = asyncio.Queue()
        self._closed = False
        self._in_flight: tuple[str, asyncio.Future[Answer]] | None = None
        self._extra = {"charger_id": charger_id}

    def submit(self, envelope: CommandEnvelope) -> bool:
        """Queue a command; return False if the connection is closing."""
        if self._closed:
            return False
        self._queue.put_nowait(envelope)
        return True

    def close(self) -> None:
        """Stop taking commands; the in-flight and queued ones end disconnected."""
        if self._closed:
            return
        self._closed = True
        self._resolve_in_flight(None)
        self._queue.put_nowait(None)

    def on_response(self, message: CallResult | CallError) -> bool:
        """Hand the charger's answer to the call in flight.

        Returns:
            Whether the answer's unique id matched the call in flight.
        """
        if self._in_flight is None or self._in_flight[0] != message.unique_id:
            return False
        self._resolve_in_flight(message)
        return True

    async def run(self) -> None:
        """Execute commands until ``close``, then finish the queued ones."""
        while (envelope := await self._queue.get()) is not None:
            if self._closed:
                result = _result(envelope, CommandOutcome.DISCONNECTED)
            else:
                result = await self._execute_safely(envelope)
            await self._publish_result(result)

    async def _execute_safely(self, envelope: CommandEnvelope) -> CommandResult:
        try:
            return await self._execute(envelope)
        except Exception:
            # A bug here must not leave the SG's activity waiting for nothing,
            # nor stop the commands queued behind this one.
            logger.exception(
                "command %s failed in the gateway",
                envelope.command_id,
                extra={**self._extra, "command_id": envelope.command_id},
            )
            return _result(
                envelope, CommandOutcome.CALL_ERROR, error="gateway internal error"
            )

    async def _execute(self, envelope: CommandEnvelope) -> CommandResult:
        extra = {**self._extra, "command_id": envelope.command_id}
        try:
            action, payload = self.dialect.to_call(envelope.command)
        except CommandNotSent as exc:
            logger.info(
                "command %s not sent: %s", envelope.command_id, exc.error, extra=extra
            )
            return _result(envelope, exc.outcome, error=exc.error)

        unique_id = str(uuid.uuid4())
        try:
            # A fresh Call: validation may rewrite its payload's floats.
            await validate_payload(
                Call(unique_id, action, payload), self.dialect.version.value
            )
        except OCPPError as exc:
            error = f"{exc.code}: {validation_text(exc)}"
            logger.info(
                "command %s invalid: %s", envelope.command_id, error, extra=extra
            )
            return _result(envelope, CommandOutcome.CALL_ERROR, error=error)

        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._in_flight = (unique_id, future)
        try:
            await self._send(call_frame(unique_id, action, payload))
            logger.debug("sent %s %s", action, unique_id, extra=extra)
            async with asyncio.timeout(self.call_timeout_s):
                answer = await future
        except TimeoutError:
            logger.info("%s not answered in time", action, extra=extra)
            return _result(envelope, CommandOutcome.TIMEOUT)
        except ConnectionClosed:
            answer = None
        finally:
            self._in_flight = None

        if answer is None:
            return _result(envelope, CommandOutcome.DISCONNECTED)
        if isinstance(answer, CallError):
            return _result(
                envelope,
                CommandOutcome.CALL_ERROR,
                error=f"{answer.error_code}: {answer.error_description}",
                payload={
                    "errorCode": answer.error_code,
                    "errorDescription": answer.error_description,
                    "errorDetails": answer.error_details,
                },
            )
        status = answer.payload.get("status")
        return _result(
            envelope,
            CommandOutcome.ANSWERED,
            status=status if isinstance(status, str) else None,
            payload=answer.payload,
        )

    def _resolve_in_flight(self, answer: Answer) -> None:
        if self._in_flight is None:
            return
        _, future = self._in_flight
        if not future.done():
            future.set_result(answer)


def _result(
    envelope: CommandEnvelope,
    outcome: CommandOutcome,
    *,
    status: str | None = None,
    payload: dict[str, Any] | None = None,
    error: str | None = None,
) -> CommandResult:
    return CommandResult(
        command_id=envelope.command_id,
        charger_id=envelope.charger_id,
        task_token=envelope.task_token,
        outcome=outcome,
        status=status,
        payload=payload or {},
        error=error,
    )
