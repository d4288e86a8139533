"""OCPP 1.6 payloads to and from the bus contract's domain types.

Pure functions, no I/O. Request payloads arrive here already validated
against the 1.6 schemas, so required keys are present and types are right;
what the schemas cannot check (date-times, numeric strings) raises a
``CallErrorReply`` with PropertyConstraintViolation.
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, assert_never

from bus.contract import (
    AuthorizeDecision,
    AuthorizeRequest,
    BootDecision,
    BootRequest,
    Command,
    CommandOutcome,
    Decision,
    IdTokenInfo,
    MeterReadings,
    MeterSample,
    OcppCall,
    OcppMessage,
    OcppReply,
    RemoteStart,
    RemoteStop,
    StartDecision,
    StatusChanged,
    StopDecision,
    TransactionEnded,
    TransactionStarted,
)
from spr_gateway.errors import (
    CallErrorReply,
    CommandNotSent,
    UnexpectedDecision,
    expect,
)
from spr_gateway.timestamps import format_datetime, parse_datetime

Payload = dict[str, Any]

INVALID_VALUE = "PropertyConstraintViolation"

# The calls a CSMS may send to a 1.6 charge point (core profiles and the
# security whitepaper); anything else in an OcppCall is not a 1.6 command.
CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "InstallCertificate",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SignedUpdateFirmware",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)


# -- charger -> SG -------------------------------------------------------------


def boot_request(payload: Payload) -> BootRequest:
    """Translate a BootNotification request."""
    # chargeBoxSerialNumber is deprecated in 1.6 but still sent by older units.
    serial = payload.get(
        "chargePointSerialNumber", payload.get("chargeBoxSerialNumber")
    )
    return BootRequest(
        vendor=payload["chargePointVendor"],
        model=payload["chargePointModel"],
        serial_number=serial,
        firmware_version=payload.get("firmwareVersion"),
        iccid=payload.get("iccid"),
        imsi=payload.get("imsi"),
        meter_type=payload.get("meterType"),
        meter_serial_number=payload.get("meterSerialNumber"),
    )


def authorize_request(payload: Payload) -> AuthorizeRequest:
    """Translate an Authorize request."""
    return AuthorizeRequest(id_token=payload["idTag"])


def transaction_started(payload: Payload) -> TransactionStarted:
    """Translate a StartTransaction request."""
    return TransactionStarted(
        connector_id=payload["connectorId"],
        id_token=payload["idTag"],
        meter_start_wh=Decimal(payload["meterStart"]),
        timestamp=_timestamp(payload["timestamp"]),
        reservation_id=payload.get("reservationId"),
    )


def transaction_ended(payload: Payload) -> TransactionEnded:
    """Translate a StopTransaction request, transactionData included."""
    return TransactionEnded(
        transaction_id=str(payload["transactionId"]),
        meter_stop_wh=Decimal(payload["meterStop"]),
        timestamp=_timestamp(payload["timestamp"]),
        id_token=payload.get("idTag"),
        reason=payload.get("reason"),
        samples=_samples(payload.get("transactionData", ())),
    )


def status_changed(payload: Payload) -> StatusChanged:
    """Translate a StatusNotification request."""
    timestamp = payload.get("timestamp")
    return StatusChanged(
        connector_id=payload["connectorId"],
        status=payload["status"],
        error_code=payload["errorCode"],
        info=payload.get("info"),
        vendor_id=payload.get("vendorId"),
        vendor_error_code=payload.get("vendorErrorCode"),
        timestamp=None if timestamp is None else _timestamp(timestamp),
    )


def meter_readings(payload: Payload) -> MeterReadings:
    """Translate a MeterValues request."""
    transaction_id = payload.get("transactionId")
    return MeterReadings(
        connector_id=payload["connectorId"],
        transaction_id=None if transaction_id is None else str(transaction_id),
        samples=_samples(payload["meterValue"]),
    )


def ocpp_message(action: str, payload: Payload) -> OcppMessage:
    """Wrap a request that has no version-neutral form."""
    return OcppMessage(action=action, payload=payload)


def _samples(meter_values: Iterable[Payload]) -> tuple[MeterSample, ...]:
    samples = []
    for meter_value in meter_values:
        timestamp = _timestamp(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            # A signed value is an opaque blob, not a number; the contract has
            # no place for it yet, so it is left out rather than misread.
            if sampled.get("format") == "SignedData":
                continue
            samples.append(
                MeterSample(
                    timestamp=timestamp,
                    value=_decimal(sampled["value"]),
                    measurand=sampled.get("measurand", "Energy.Active.Import.Register"),
                    unit=sampled.get("unit", "Wh"),
                    phase=sampled.get("phase", ""),
                    location=sampled.get("location", ""),
                    context=sampled.get("context", ""),
                )
            )
    return tuple(samples)


def _timestamp(text: str) -> datetime:
    try:
        return parse_datetime(text)
    except ValueError:
        raise CallErrorReply(
            INVALID_VALUE, "timestamp is not an ISO 8601 date-time"
        ) from None


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise CallErrorReply(INVALID_VALUE, "sampled value is not a number") from None
    if not value.is_finite():
        raise CallErrorReply(INVALID_VALUE, "sampled value is not a number")
    return value


# -- SG -> charger: answers ----------------------------------------------------


def heartbeat_response(now: datetime) -> Payload:
    """Build a Heartbeat response for the time ``now``."""
    return {"currentTime": format_datetime(now)}


def boot_response(decision: Decision) -> Payload:
    """Translate a ``BootDecision`` into a BootNotification response."""
    boot = expect(decision, BootDecision)
    return {
        "status": boot.status.value,
        "currentTime": format_datetime(boot.current_time),
        "interval": boot.interval_s,
    }


def authorize_response(decision: Decision) -> Payload:
    """Translate an ``AuthorizeDecision`` into an Authorize response."""
    authorize = expect(decision, AuthorizeDecision)
    return {"idTagInfo": id_tag_info(authorize.id_token_info)}


def start_transaction_response(decision: Decision) -> Payload:
    """Translate a ``StartDecision`` into a StartTransaction response."""
    start = expect(decision, StartDecision)
    try:
        transaction_id = int(start.transaction_id)
    except ValueError:
        raise UnexpectedDecision(
            f"transaction id {start.transaction_id!r} is not a 1.6 integer"
        ) from None
    if start.id_token_info is None:
        # 1.6 starts always carry an idTag, so the SG always judges it.
        raise UnexpectedDecision("StartTransaction answered without idTagInfo")
    return {
        "transactionId": transaction_id,
        "idTagInfo": id_tag_info(start.id_token_info),
    }


def stop_transaction_response(decision: Decision) -> Payload:
    """Translate a ``StopDecision`` into a StopTransaction response."""
    stop = expect(decision, StopDecision)
    if stop.id_token_info is None:
        return {}
    return {"idTagInfo": id_tag_info(stop.id_token_info)}


def ocpp_reply(decision: Decision) -> Payload:
    """Pass an ``OcppReply``'s payload through as the response."""
    return expect(decision, OcppReply).payload


def id_tag_info(info: IdTokenInfo) -> Payload:
    """Translate the CSMS's verdict on an id token into a 1.6 IdTagInfo."""
    result: Payload = {"status": info.status.value}
    if info.expiry_date is not None:
        result["expiryDate"] = format_datetime(info.expiry_date)
    if info.parent_id_token is not None:
        result["parentIdTag"] = info.parent_id_token
    return result


# -- SG -> charger: commands ---------------------------------------------------


def command_call(command: Command) -> tuple[str, Payload]:
    """Translate an SG command into a 1.6 ``(action, payload)``.

    Raises:
        CommandNotSent: the command cannot be expressed in OCPP 1.6.
    """
    match command:
        case RemoteStart():
            payload: Payload = {}
            if command.connector_id is not None:
                payload["connectorId"] = command.connector_id
            payload["idTag"] = command.id_token
            return "RemoteStartTransaction", payload
        case RemoteStop():
            try:
                transaction_id = int(command.transaction_id)
            except ValueError:
                raise CommandNotSent(
                    CommandOutcome.CALL_ERROR,
                    f"transaction id {command.transaction_id!r} is not a 1.6 integer",
                ) from None
            return "RemoteStopTransaction", {"transactionId": transaction_id}
        case OcppCall():
            if command.action not in CSMS_ACTIONS:
                raise CommandNotSent(
                    CommandOutcome.NOT_SUPPORTED,
                    f"{command.action} is not a CSMS-initiated OCPP 1.6 action",
                )
            return command.action, command.payload
        case _:
            assert_never(command)
