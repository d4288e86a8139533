"""What an OCPP version plugs into the version-neutral gateway core.

Each version package (``v16``, later ``v201``) builds one ``Dialect``: its
WebSocket subprotocol, a routing table from charger-initiated actions to how
the gateway handles them, the translation of SG commands into calls, and the
spelling of CALLERROR codes in that version.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bus.contract import Command, Decision, Event, OcppVersion
from spr_gateway.framing import FrameFault

Payload = dict[str, Any]


def _empty_payload() -> Payload:
    return {}


@dataclass(frozen=True, slots=True)
class LocalRoute:
    """A call the gateway answers itself (no business decision involved).

    Attributes:
        respond: builds the response payload.
        seen: builds an event published fire-and-forget after the answer.
    """

    respond: Callable[[], Payload]
    seen: Callable[[], Event] | None = None


@dataclass(frozen=True, slots=True)
class EventRoute:
    """A fire-and-forget call: the event is confirmed by the bus, then answered.

    Attributes:
        to_event: translates the validated request payload into an event.
        respond: builds the response payload sent after the broker's confirm.
    """

    to_event: Callable[[Payload], Event]
    respond: Callable[[], Payload] = _empty_payload


@dataclass(frozen=True, slots=True)
class DecisionRoute:
    """A call that the SG decides on (RPC over the bus).

    Attributes:
        to_event: translates the validated request payload into an event.
        to_response: translates the SG's decision into the response payload;
            raises ``UnexpectedDecision`` for a decision of the wrong kind.
    """

    to_event: Callable[[Payload], Event]
    to_response: Callable[[Decision], Payload]


Route = LocalRoute | EventRoute | DecisionRoute


@dataclass(frozen=True, slots=True)
class Dialect:
    """One OCPP version as the gateway core sees it.

    Attributes:
        subprotocol: the WebSocket subprotocol that selects this version.
        version: the contract's name of the version, also the name the ``ocpp``
            library's schema validation takes.
        routes: charger-initiated actions this gateway handles; any other
            action is answered with NotImplemented.
        to_call: turns an SG command into ``(action, payload)``; raises
            ``CommandNotSent`` for a command this version cannot express.
        frame_faults: the CALLERROR code for each kind of unreadable frame.
        error_codes: library error codes spelled differently in this version.
    """

    subprotocol: str
    version: OcppVersion
    routes: Mapping[str, Route]
    to_call: Callable[[Command], tuple[str, Payload]]
    frame_faults: Mapping[FrameFault, str]
    error_codes: Mapping[str, str] = field(default_factory=dict)

    def error_code(self, library_code: str) -> str:
        """Return ``library_code`` as this version spells it."""
        return self.error_codes.get(library_code, library_code)
