"""OCPP 2.0.1 TransactionEvent to and from the bus contract.

One action carries a transaction's whole life: its ``eventType`` picks the
contract event (Started, Updated, Ended), and the SG's decision on any of
them is answered the same way. Pure functions, no I/O.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from bus.contract import (
    Decision,
    MeterSample,
    StartDecision,
    StopDecision,
    TransactionDecision,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
)
from spr_gateway.errors import UnexpectedDecision
from spr_gateway.v201 import translate
from spr_gateway.v201.translate import Payload

BEGIN = "Transaction.Begin"
END = "Transaction.End"

# Without an EVSE, a Started event is booked on EVSE 0, the station itself.
UNKNOWN_EVSE = 0

# 2.0.1 lets a charger leave stoppedReason out only when it is Local.
DEFAULT_STOPPED_REASON = "Local"

CENT = Decimal("0.01")

TransactionEvent = TransactionStarted | TransactionUpdated | TransactionEnded


@dataclass(frozen=True, slots=True)
class _Facts:
    """What every TransactionEvent request carries, whatever its type."""

    transaction_id: str
    timestamp: datetime
    seq_no: int
    offline: bool
    trigger_reason: str
    evse_id: int | None
    connector_id: int | None
    id_token: str | None
    id_token_type: str | None
    info: Payload


def transaction_event(payload: Payload) -> TransactionEvent:
    """Translate a TransactionEvent request into the event its type names.

    Raises:
        CallErrorReply: a timestamp or a sampled value is unusable.
    """
    return _BY_TYPE[payload["eventType"]](payload)


def transaction_event_response(decision: Decision) -> Payload:
    """Translate the SG's decision on a TransactionEvent into its response.

    Start, transaction and stop decisions answer alike with ``idTokenInfo``
    when the decision judges an id token. ``totalCost`` (rounded to the cent)
    answers only the Ended event: 2.0.1 allows it once charging has ended, so
    a running cost stays in the CSMS (its API) rather than on the wire.

    Raises:
        UnexpectedDecision: the decision is of another kind.
    """
    if not isinstance(decision, StartDecision | TransactionDecision | StopDecision):
        raise UnexpectedDecision(
            f"expected a transaction decision, got a {type(decision).__name__}"
        )

    result: Payload = {}
    if decision.id_token_info is not None:
        result["idTokenInfo"] = translate.id_token_info(decision.id_token_info)
    if isinstance(decision, StopDecision) and decision.total_cost is not None:
        result["totalCost"] = _money(decision.total_cost)
    return result


def _started(payload: Payload) -> TransactionStarted:
    facts = _facts(payload)
    readings = translate.samples(payload.get("meterValue", ()))
    return TransactionStarted(
        transaction_id=facts.transaction_id,
        connector_id=UNKNOWN_EVSE if facts.evse_id is None else facts.evse_id,
        evse_connector_id=facts.connector_id,
        id_token=facts.id_token,
        id_token_type=facts.id_token_type,
        meter_start_wh=_meter_start(readings),
        timestamp=facts.timestamp,
        reservation_id=payload.get("reservationId"),
        remote_start_id=facts.info.get("remoteStartId"),
        seq_no=facts.seq_no,
        offline=facts.offline,
        trigger_reason=facts.trigger_reason,
        samples=readings,
    )


def _updated(payload: Payload) -> TransactionUpdated:
    facts = _facts(payload)
    return TransactionUpdated(
        transaction_id=facts.transaction_id,
        connector_id=facts.evse_id,
        evse_connector_id=facts.connector_id,
        id_token=facts.id_token,
        id_token_type=facts.id_token_type,
        charging_state=facts.info.get("chargingState"),
        remote_start_id=facts.info.get("remoteStartId"),
        timestamp=facts.timestamp,
        seq_no=facts.seq_no,
        offline=facts.offline,
        trigger_reason=facts.trigger_reason,
        samples=translate.samples(payload.get("meterValue", ())),
    )


def _ended(payload: Payload) -> TransactionEnded:
    facts = _facts(payload)
    readings = translate.samples(payload.get("meterValue", ()))
    return TransactionEnded(
        transaction_id=facts.transaction_id,
        connector_id=facts.evse_id,
        evse_connector_id=facts.connector_id,
        id_token=facts.id_token,
        id_token_type=facts.id_token_type,
        meter_stop_wh=_meter_stop(readings),
        reason=facts.info.get("stoppedReason", DEFAULT_STOPPED_REASON),
        timestamp=facts.timestamp,
        seq_no=facts.seq_no,
        offline=facts.offline,
        trigger_reason=facts.trigger_reason,
        samples=readings,
    )


_BY_TYPE: Mapping[str, Callable[[Payload], TransactionEvent]] = {
    "Started": _started,
    "Updated": _updated,
    "Ended": _ended,
}


def _facts(payload: Payload) -> _Facts:
    evse = payload.get("evse", {})
    id_token = payload.get("idToken", {})
    info = payload["transactionInfo"]
    return _Facts(
        transaction_id=info["transactionId"],
        timestamp=translate.timestamp(payload["timestamp"]),
        seq_no=payload["seqNo"],
        offline=payload.get("offline", False),
        trigger_reason=payload["triggerReason"],
        evse_id=evse.get("id"),
        connector_id=evse.get("connectorId"),
        # NoAuthorization tokens are "" on the wire and stay "".
        id_token=id_token.get("idToken"),
        id_token_type=id_token.get("type"),
        info=info,
    )


def _meter_start(readings: tuple[MeterSample, ...]) -> Decimal | None:
    """Return the Transaction.Begin register, else the first energy register."""
    candidates = _registers(readings, BEGIN)
    return candidates[0] if candidates else None


def _meter_stop(readings: tuple[MeterSample, ...]) -> Decimal | None:
    """Return the Transaction.End register, else the last energy register."""
    candidates = _registers(readings, END)
    return candidates[-1] if candidates else None


def _registers(readings: tuple[MeterSample, ...], context: str) -> list[Decimal]:
    """Return the energy registers (Wh) read in ``context``, else all of them."""
    registers = [(s.context, wh) for s in readings if (wh := s.energy_wh()) is not None]
    in_context = [wh for read_in, wh in registers if read_in == context]
    return in_context or [wh for _, wh in registers]


def _money(amount: Decimal) -> float:
    # The ocpp library's encoder writes a Decimal with one decimal place; a
    # float of a cent-rounded amount writes as the cents it holds. The
    # contract only admits finite amounts.
    return float(amount.quantize(CENT, rounding=ROUND_HALF_UP))
