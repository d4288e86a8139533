"""Calls a charger makes: validate, route, relay to the SG, answer.

A charger never reads the text of an internal failure: known failures map to
OCPP CALLERROR codes with fixed descriptions, anything else to InternalError.
"""

import logging
import math
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, assert_never

from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallResult

from bus.contract import DecisionError, Event, EventEnvelope, OcppVersion
from moovolt.metrics import count_charger_message
from spr_gateway.dialect import (
    DecisionRoute,
    Dialect,
    EventRoute,
    LocalRoute,
    Payload,
    Route,
)
from spr_gateway.errors import CallErrorReply, UnexpectedDecision
from spr_gateway.framing import (
    describe,
    error_frame,
    result_frame,
    validate_payload,
    validation_text,
)
from spr_gateway.rpc import BusUnavailable, DecisionTimeout, SgClient

logger = logging.getLogger(__name__)

INTERNAL = "InternalError"
NOT_IN_TIME = "CSMS did not answer in time"
# Python reads NaN, Infinity and 1e999, which JSON lacks and the schemas do
# not refuse; the bus would carry them as null.
NOT_FINITE = "payload holds a number that is not finite"
# The charger retries a call answered with this; nothing was stored.
NOT_STORED = "CSMS could not store the message, retry later"

Send = Callable[[str], Awaitable[None]]


class CallHandler:
    """Answer one charger's calls, one at a time.

    Args:
        charger_id: the charge point id of the connection.
        dialect: the connection's OCPP version.
        sg: the link to the SG.
        gateway_id: this gateway's id, stamped on every envelope.
        send: sends one frame to the charger.
    """

    def __init__(
        self,
        charger_id: str,
        dialect: Dialect,
        sg: SgClient,
        gateway_id: str,
        send: Send,
    ) -> None:
        self.charger_id = charger_id
        self.dialect = dialect
        self.sg = sg
        self.gateway_id = gateway_id
        self._send = send
        self._extra = {"charger_id": charger_id}

    @property
    def version(self) -> OcppVersion:
        return self.dialect.version

    async def handle(self, call: Call, received_at: datetime) -> None:
        """Answer ``call`` with a CALLRESULT or a CALLERROR.

        Args:
            call: the parsed CALL.
            received_at: when its frame arrived.
        """
        route = self.dialect.routes.get(call.action)
        if route is None:
            logger.info("unknown action %.64s", call.action, extra=self._extra)
            count_charger_message(self.version.value, None, "NotImplemented")
            await self._send(error_frame(call.unique_id, "NotImplemented"))
            return

        try:
            await validate_payload(call, self.version.value)
        except OCPPError as exc:
            code = self.dialect.error_code(exc.code)
            logger.info("%s rejected: %s", call.action, code, extra=self._extra)
            count_charger_message(self.version.value, call.action, code)
            await self._send(error_frame(call.unique_id, code, validation_text(exc)))
            return

        try:
            payload = await self._run(route, call, received_at)
            await validate_payload(
                CallResult(call.unique_id, payload, call.action), self.version.value
            )
        except Exception as exc:
            code, frame = self._failure_frame(call, exc)
            count_charger_message(self.version.value, call.action, code)
            await self._send(frame)
            return

        count_charger_message(self.version.value, call.action, "result")
        await self._send(result_frame(call.unique_id, payload))
        if isinstance(route, LocalRoute) and route.seen is not None:
            await self._tell_quietly(call.unique_id, route.seen(), received_at)

    async def _run(self, route: Route, call: Call, received_at: datetime) -> Payload:
        match route:
            case LocalRoute():
                return route.respond()
            case EventRoute():
                event = to_event(route, call.payload)
                envelope = self._envelope(call.unique_id, event, received_at)
                await self.sg.tell(envelope)
                return route.respond()
            case DecisionRoute():
                event = to_event(route, call.payload)
                envelope = self._envelope(call.unique_id, event, received_at)
                decision = await self.sg.ask(envelope)
                if isinstance(decision, DecisionError):
                    logger.warning(
                        "SG could not decide %s: %s %s",
                        call.action,
                        decision.code,
                        decision.description,
                        extra=self._extra,
                    )
                    raise CallErrorReply(decision.code, describe(decision.code))
                return route.to_response(decision)
            case _:
                assert_never(route)

    def _failure_frame(self, call: Call, exc: Exception) -> tuple[str, str]:
        """Map a failure to the CALLERROR the charger reads, and log it.

        Returns:
            The CALLERROR's code and its frame.
        """
        extra = self._extra
        if isinstance(exc, CallErrorReply):
            code = self.dialect.error_code(exc.code)
            logger.info("%s rejected: %s", call.action, code, extra=extra)
            return code, error_frame(call.unique_id, code, exc.description)
        if isinstance(exc, DecisionTimeout):
            logger.warning("SG did not answer %s in time", call.action, extra=extra)
            return INTERNAL, error_frame(call.unique_id, INTERNAL, NOT_IN_TIME)
        if isinstance(exc, BusUnavailable):
            logger.warning("%s not relayed: %s", call.action, exc, extra=extra)
            return INTERNAL, error_frame(call.unique_id, INTERNAL, NOT_STORED)
        if isinstance(exc, UnexpectedDecision | OCPPError):
            # The SG's answer does not fit the call or the response schema.
            # An OCPPError's own text quotes the payload; keep that out.
            reason = validation_text(exc) if isinstance(exc, OCPPError) else exc
            logger.warning(
                "unusable answer to %s: %s", call.action, reason, extra=extra
            )
            return INTERNAL, error_frame(call.unique_id, INTERNAL)
        logger.error("failed to handle %s", call.action, exc_info=exc, extra=extra)
        return INTERNAL, error_frame(call.unique_id, INTERNAL)

    async def _tell_quietly(
        self, message_id: str, event: Event, received_at: datetime
    ) -> None:
        # The charger already has its answer; a lost notice is only logged.
        try:
            await self.sg.tell(self._envelope(message_id, event, received_at))
        except BusUnavailable as exc:
            logger.warning("%s not published: %s", event.kind, exc, extra=self._extra)

    def _envelope(
        self, message_id: str, event: Event, received_at: datetime
    ) -> EventEnvelope:
        return EventEnvelope(
            message_id=message_id,
            charger_id=self.charger_id,
            ocpp_version=self.version,
            gateway_id=self.gateway_id,
            received_at=received_at,
            event=event,
        )


def to_event(route: EventRoute | DecisionRoute, payload: Payload) -> Event:
    """Translate a request payload that fits its schema into its event.

    Args:
        route: the action's route.
        payload: the validated request payload.

    Returns:
        The event the SG is told or asked about.

    Raises:
        CallErrorReply: a value the schema let through cannot be relayed.
    """
    event = route.to_event(payload)
    # Checked after the translation, whose own refusals name the field.
    if not _finite(payload):
        raise CallErrorReply("PropertyConstraintViolation", NOT_FINITE)
    return event


def _finite(value: Any) -> bool:
    # Iterative: the JSON parser allows deeper nesting than recursion would.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True
