"""OCPP-J framing: parse incoming frames, serialize outgoing ones.

Parsing goes through the ``ocpp`` library's public ``unpack``; this module
adds the checks it leaves out (element types, unique id length) and turns
every failure into a ``FrameError`` that says which kind of fault it was, so
that each OCPP version can spell the CALLERROR its own way.

Payloads are checked against the JSON schemas the library ships by
validators compiled from them once (``fastjsonschema``, under the Draft 4
rules and without format checks, as the library applies them); a payload
they refuse goes through the library's own validation, whose error code and
text the charger reads. The library's validation costs more than the rest
of a heartbeat's trip through the gateway.
"""

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeAlias

import fastjsonschema
import ocpp
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, MessageType, unpack
from ocpp.messages import validate_payload as library_validate_payload

Message: TypeAlias = Call | CallResult | CallError

# OCPP-J 1.6 and 2.0.1 both cap the unique id at 36 characters.
MAX_UNIQUE_ID = 36

# The unique id of a CALLERROR that answers a frame whose own id is unreadable.
UNKNOWN_ID = "-1"

# What a charger reads for each code; the ocpp library's own defaults swap the
# meanings of NotImplemented and NotSupported, so they are not used.
DESCRIPTIONS = {
    "NotImplemented": "Requested Action is not known by receiver",
    "NotSupported": "Requested Action is recognized but not supported by the receiver",
    "InternalError": "An internal error occurred",
    "ProtocolError": "Payload for Action is incomplete",
    "SecurityError": "A security issue prevented the Action",
    "FormationViolation": "Payload for Action is syntactically incorrect",
    "FormatViolation": "Payload for Action is syntactically incorrect",
    "PropertyConstraintViolation": "A field of the payload has an invalid value",
    "OccurenceConstraintViolation": "A field of the payload occurs a wrong number "
    "of times",
    "OccurrenceConstraintViolation": "A field of the payload occurs a wrong number "
    "of times",
    "TypeConstraintViolation": "A field of the payload has the wrong type",
    "GenericError": "The Action failed",
    "RpcFrameworkError": "The message is not a valid RPC frame",
    "MessageTypeNotSupported": "The message type is not supported",
}


def describe(code: str) -> str:
    """Return the text a charger reads for a CALLERROR ``code``."""
    return DESCRIPTIONS.get(code, "")


class FrameFault(StrEnum):
    """Why a frame could not be read as an OCPP-J message."""

    NOT_JSON = "not_json"  # not (UTF-8) JSON at all
    NOT_RPC = "not_rpc"  # JSON, but not a well-formed CALL/CALLRESULT/CALLERROR
    UNKNOWN_TYPE = "unknown_type"  # a MessageTypeId other than 2, 3 or 4


class FrameError(Exception):
    """An incoming frame is not a valid OCPP-J message.

    Attributes:
        fault: the kind of fault; the dialect maps it to a CALLERROR code.
        unique_id: the frame's unique id if it could be read, else ``None``.
        message_type_id: the frame's MessageTypeId if it could be read.
        detail: a short public explanation.
    """

    def __init__(
        self,
        fault: FrameFault,
        detail: str,
        *,
        unique_id: str | None = None,
        message_type_id: int | None = None,
    ) -> None:
        super().__init__(fault, detail)
        self.fault = fault
        self.detail = detail
        self.unique_id = unique_id
        self.message_type_id = message_type_id


def parse(raw: str | bytes) -> Message:
    """Parse one WebSocket message into a Call, CallResult or CallError.

    Raises:
        FrameError: the message is not a valid OCPP-J frame.
    """
    try:
        message = unpack(raw)
    except OCPPError as exc:
        raise _frame_error(raw, exc) from exc
    except RecursionError as exc:
        # json.loads gives up on deeply nested arrays before unpack can.
        raise FrameError(FrameFault.NOT_JSON, "Message is nested too deeply") from exc
    except ValueError as exc:
        # An integer of thousands of digits: Python refuses to convert it.
        raise FrameError(
            FrameFault.NOT_JSON, "Message holds an oversized number"
        ) from exc

    unique_id = message.unique_id
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID:
        raise FrameError(
            FrameFault.NOT_RPC,
            "Unique id must be a string of 1 to 36 characters",
            message_type_id=message.message_type_id,
        )
    if isinstance(message, Call) and not isinstance(message.action, str):
        raise FrameError(
            FrameFault.NOT_RPC,
            "Action must be a string",
            unique_id=unique_id,
            message_type_id=MessageType.Call,
        )
    if isinstance(message, CallResult) and not isinstance(message.payload, dict):
        raise FrameError(
            FrameFault.NOT_RPC,
            "Payload must be an object",
            unique_id=unique_id,
            message_type_id=MessageType.CallResult,
        )
    if isinstance(message, CallError) and not (
        isinstance(message.error_code, str)
        and isinstance(message.error_description, str)
        and isinstance(message.error_details, dict)
    ):
        raise FrameError(
            FrameFault.NOT_RPC,
            "CALLERROR elements have the wrong types",
            unique_id=unique_id,
            message_type_id=MessageType.CallError,
        )
    return message


def _frame_error(raw: str | bytes, exc: OCPPError) -> FrameError:
    message_type_id, unique_id = _peek(raw)
    if exc.code == "FormatViolation":
        return FrameError(FrameFault.NOT_JSON, "Message is not valid JSON")
    if exc.code == "PropertyConstraintViolation":
        return FrameError(
            FrameFault.UNKNOWN_TYPE,
            "MessageTypeId is not 2, 3 or 4",
            unique_id=unique_id,
            message_type_id=message_type_id,
        )
    return FrameError(
        FrameFault.NOT_RPC,
        "Message is not a well-formed OCPP-J array",
        unique_id=unique_id,
        message_type_id=message_type_id,
    )


def _peek(raw: str | bytes) -> tuple[int | None, str | None]:
    """Read what can be read of a broken frame's type and unique id.

    Only runs on the error path, so the second JSON parse costs nothing on the
    hot path.
    """
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(data, list) or not data:
        return None, None
    first = data[0]
    message_type_id = (
        first if isinstance(first, int) and not isinstance(first, bool) else None
    )
    unique_id = data[1] if len(data) > 1 else None
    if not isinstance(unique_id, str) or not 0 < len(unique_id) <= MAX_UNIQUE_ID:
        unique_id = None
    return message_type_id, unique_id


def validation_text(exc: OCPPError, limit: int = 200) -> str:
    """Return the one-line reason a payload failed its schema.

    ``validate_payload`` raises while handling jsonschema's error, whose
    ``message`` names the failing property; the library's own ``details`` may
    instead quote the whole payload.
    """
    source: Any = exc.__cause__ or exc.__context__
    message = getattr(source, "message", None)
    if not isinstance(message, str) and isinstance(exc.details, dict):
        message = exc.details.get("cause")
    if not isinstance(message, str) or not message:
        return describe(exc.code)
    return message[:limit]


# The library validates every version's schemas with these rules.
DRAFT_4 = "http://json-schema.org/draft-04/schema#"
# Schemas the library reads with Decimal floats, for their multipleOf; only
# the library validates these.
DECIMAL_SCHEMAS = frozenset(
    {
        ("1.6", MessageType.Call, "SetChargingProfile"),
        ("1.6", MessageType.Call, "RemoteStartTransaction"),
        ("1.6", MessageType.CallResult, "GetCompositeSchedule"),
    }
)
SCHEMAS = Path(ocpp.__file__).parent

Check = Callable[[Any], Any]
_compiled: dict[tuple[str, int, str], Check | None] = {}


async def validate_payload(message: Call | CallResult, ocpp_version: str) -> None:
    """Check ``message``'s payload against its OCPP JSON schema.

    A drop-in for the library's ``validate_payload``: it accepts and refuses
    the same payloads, with the same errors, in a fraction of the time.

    Raises:
        OCPPError: the payload does not fit; the library's error, its cause
            the jsonschema error that ``validation_text`` reads.
    """
    check = _compiled_check(ocpp_version, message.message_type_id, message.action)
    if check is not None:
        try:
            check(message.payload)
            return
        except fastjsonschema.JsonSchemaValueException:
            pass  # the library says exactly what is wrong
    await library_validate_payload(message, ocpp_version)


def _compiled_check(version: str, message_type_id: int, action: str) -> Check | None:
    """Return the compiled validator of a schema, or None to use the library."""
    key = (version, message_type_id, action)
    if key in _compiled:
        return _compiled[key]
    check = None
    if key not in DECIMAL_SCHEMAS and isinstance(action, str) and action.isalnum():
        name = action
        if message_type_id == MessageType.CallResult:
            name += "Response"
        elif version != "1.6":
            name += "Request"
        path = SCHEMAS / f"v{version.replace('.', '')}" / "schemas" / f"{name}.json"
        try:
            schema = json.loads(path.read_text(encoding="utf-8-sig"))
            schema["$schema"] = DRAFT_4
            check = fastjsonschema.compile(
                schema, use_default=False, use_formats=False, detailed_exceptions=False
            )
        except (OSError, ValueError, fastjsonschema.JsonSchemaDefinitionException):
            check = None  # no schema: the library answers as it does
    _compiled[key] = check
    return check


def call_frame(unique_id: str, action: str, payload: dict[str, Any]) -> str:
    """Serialize a CALL."""
    return str(Call(unique_id, action, payload).to_json())


def result_frame(unique_id: str, payload: dict[str, Any]) -> str:
    """Serialize a CALLRESULT."""
    return str(CallResult(unique_id, payload).to_json())


def error_frame(unique_id: str, code: str, description: str | None = None) -> str:
    """Serialize a CALLERROR; ``description`` defaults to the code's text."""
    text = describe(code) if description is None else description
    return str(CallError(unique_id, code, text, {}).to_json())
