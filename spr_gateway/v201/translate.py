"""OCPP 2.0.1 payloads to and from the bus contract's domain types.

Pure functions, no I/O. Request payloads arrive here already validated
against the 2.0.1 schemas, so required keys are present and types are right;
what the schemas cannot check (date-times, finite numbers) raises a
``CallErrorReply`` with PropertyConstraintViolation. TransactionEvent has a
module of its own, ``transactions``.
"""

from collections.abc import Iterable
from datetime import datetime
from decimal import (
    Context,
    Decimal,
    InvalidOperation,
    Overflow,
    Underflow,
    localcontext,
)
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
    ReportedVariable,
    StatusChanged,
    VariablesReported,
)
from spr_gateway.errors import CallErrorReply, CommandNotSent, expect
from spr_gateway.timestamps import format_datetime, parse_datetime

Payload = dict[str, Any]

INVALID_VALUE = "PropertyConstraintViolation"

# The defaults the 2.0.1 SampledValueType and UnitOfMeasureType schemas name.
DEFAULT_MEASURAND = "Energy.Active.Import.Register"
DEFAULT_CONTEXT = "Sample.Periodic"
DEFAULT_LOCATION = "Outlet"
DEFAULT_UNIT = "Wh"

# A multiplier that scales a reading beyond what a Decimal holds is refused
# rather than rounded to infinity or zero.
_SCALING = Context(traps=[InvalidOperation, Overflow, Underflow])

# The calls a CSMS may send to a 2.0.1 charging station; anything else in an
# OcppCall is not a 2.0.1 command.
CSMS_ACTIONS = frozenset(
    {
        "CancelReservation",
        "CertificateSigned",
        "ChangeAvailability",
        "ClearCache",
        "ClearChargingProfile",
        "ClearDisplayMessage",
        "ClearVariableMonitoring",
        "CostUpdated",
        "CustomerInformation",
        "DataTransfer",
        "DeleteCertificate",
        "GetBaseReport",
        "GetChargingProfiles",
        "GetCompositeSchedule",
        "GetDisplayMessages",
        "GetInstalledCertificateIds",
        "GetLocalListVersion",
        "GetLog",
        "GetMonitoringReport",
        "GetReport",
        "GetTransactionStatus",
        "GetVariables",
        "InstallCertificate",
        "PublishFirmware",
        "RequestStartTransaction",
        "RequestStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "SetDisplayMessage",
        "SetMonitoringBase",
        "SetMonitoringLevel",
        "SetNetworkProfile",
        "SetVariableMonitoring",
        "SetVariables",
        "TriggerMessage",
        "UnlockConnector",
        "UnpublishFirmware",
        "UpdateFirmware",
    }
)


# -- charger -> SG -------------------------------------------------------------


def boot_request(payload: Payload) -> BootRequest:
    """Translate a BootNotification request."""
    station = payload["chargingStation"]
    modem = station.get("modem", {})
    return BootRequest(
        vendor=station["vendorName"],
        model=station["model"],
        serial_number=station.get("serialNumber"),
        firmware_version=station.get("firmwareVersion"),
        iccid=modem.get("iccid"),
        imsi=modem.get("imsi"),
    )


def authorize_request(payload: Payload) -> AuthorizeRequest:
    """Translate an Authorize request."""
    id_token = payload["idToken"]
    return AuthorizeRequest(
        id_token=id_token["idToken"], id_token_type=id_token["type"]
    )


def status_changed(payload: Payload) -> StatusChanged:
    """Translate a StatusNotification request."""
    return StatusChanged(
        connector_id=payload["evseId"],
        evse_connector_id=payload["connectorId"],
        status=payload["connectorStatus"],
        timestamp=timestamp(payload["timestamp"]),
    )


def meter_readings(payload: Payload) -> MeterReadings:
    """Translate a MeterValues request."""
    return MeterReadings(
        connector_id=payload["evseId"], samples=samples(payload["meterValue"])
    )


def variables_reported(payload: Payload) -> VariablesReported:
    """Translate a NotifyReport request: one variable per reported attribute."""
    variables = []
    for data in payload.get("reportData", ()):
        component = data["component"]
        evse = component.get("evse", {})
        variable = data["variable"]
        characteristics = data.get("variableCharacteristics", {})
        for attribute in data["variableAttribute"]:
            variables.append(
                ReportedVariable(
                    component=component["name"],
                    component_instance=component.get("instance", ""),
                    evse_id=evse.get("id", 0),
                    connector_id=evse.get("connectorId", 0),
                    variable=variable["name"],
                    variable_instance=variable.get("instance", ""),
                    attribute_type=attribute.get("type", "Actual"),
                    value=attribute.get("value"),
                    mutability=attribute.get("mutability"),
                    persistent=attribute.get("persistent"),
                    constant=attribute.get("constant"),
                    data_type=characteristics.get("dataType"),
                    unit=characteristics.get("unit"),
                )
            )
    return VariablesReported(
        request_id=payload["requestId"],
        seq_no=payload["seqNo"],
        tbc=payload.get("tbc", False),
        generated_at=timestamp(payload["generatedAt"]),
        variables=tuple(variables),
    )


def ocpp_message(action: str, payload: Payload) -> OcppMessage:
    """Wrap a request that has no version-neutral form."""
    return OcppMessage(action=action, payload=payload)


def samples(meter_values: Iterable[Payload]) -> tuple[MeterSample, ...]:
    """Translate 2.0.1 MeterValueType objects into samples, defaults filled in.

    Each value is scaled by its unit's multiplier, so that it reads in the
    unit given. A signed meter value travels without its signature: the
    contract has no place for one yet.

    Raises:
        CallErrorReply: a timestamp or a value is unusable.
    """
    result = []
    for meter_value in meter_values:
        moment = timestamp(meter_value["timestamp"])
        for sampled in meter_value["sampledValue"]:
            unit = sampled.get("unitOfMeasure", {})
            result.append(
                MeterSample(
                    timestamp=moment,
                    value=_scaled(sampled["value"], unit.get("multiplier", 0)),
                    measurand=sampled.get("measurand", DEFAULT_MEASURAND),
                    unit=unit.get("unit", DEFAULT_UNIT),
                    phase=sampled.get("phase", ""),
                    location=sampled.get("location", DEFAULT_LOCATION),
                    context=sampled.get("context", DEFAULT_CONTEXT),
                )
            )
    return tuple(result)


def timestamp(text: str) -> datetime:
    """Parse a request's date-time.

    Raises:
        CallErrorReply: ``text`` is not an ISO 8601 date-time.
    """
    try:
        return parse_datetime(text)
    except ValueError:
        raise CallErrorReply(
            INVALID_VALUE, "timestamp is not an ISO 8601 date-time"
        ) from None


def _scaled(value: float, multiplier: int) -> Decimal:
    # repr gives the shortest text that reads back as the same float, so
    # 1500.1 stays 1500.1 instead of its binary neighbour.
    number = Decimal(value) if isinstance(value, int) else Decimal(repr(value))
    if not number.is_finite():
        raise CallErrorReply(INVALID_VALUE, "sampled value is not a number")

    if multiplier == 0:
        return number
    try:
        with localcontext(_SCALING):
            return number * Decimal(10) ** multiplier
    except ArithmeticError:
        raise CallErrorReply(
            INVALID_VALUE, "sampled value is out of range after its multiplier"
        ) from None


# -- SG -> charger: answers ----------------------------------------------------


def heartbeat_response(now: datetime) -> Payload:
    """Build a Heartbeat response for the time ``now``."""
    return {"currentTime": format_datetime(now)}


def boot_response(decision: Decision) -> Payload:
    """Translate a ``BootDecision`` into a BootNotification response."""
    boot = expect(decision, BootDecision)
    return {
        "currentTime": format_datetime(boot.current_time),
        "interval": boot.interval_s,
        "status": boot.status.value,
    }


def authorize_response(decision: Decision) -> Payload:
    """Translate an ``AuthorizeDecision`` into an Authorize response."""
    authorize = expect(decision, AuthorizeDecision)
    return {"idTokenInfo": id_token_info(authorize.id_token_info)}


def ocpp_reply(decision: Decision) -> Payload:
    """Pass an ``OcppReply``'s payload through as the response."""
    return expect(decision, OcppReply).payload


def id_token_info(info: IdTokenInfo) -> Payload:
    """Translate the CSMS's verdict on an id token into a 2.0.1 IdTokenInfo.

    The cache expiry is ``cache_expiry_date``, else ``expiry_date``; a parent
    id token becomes a group id token of type Central.
    """
    result: Payload = {"status": info.status.value}
    expiry = info.cache_expiry_date or info.expiry_date
    if expiry is not None:
        result["cacheExpiryDateTime"] = format_datetime(expiry)
    if info.parent_id_token is not None:
        result["groupIdToken"] = {"idToken": info.parent_id_token, "type": "Central"}
    return result


# -- SG -> charger: commands ---------------------------------------------------


def command_call(command: Command) -> tuple[str, Payload]:
    """Translate an SG command into a 2.0.1 ``(action, payload)``.

    Raises:
        CommandNotSent: the command cannot be expressed in OCPP 2.0.1.
    """
    match command:
        case RemoteStart():
            if command.remote_start_id is None:
                raise CommandNotSent(
                    CommandOutcome.CALL_ERROR,
                    "RequestStartTransaction needs a remote start id",
                )
            payload: Payload = {}
            if command.connector_id is not None:
                payload["evseId"] = command.connector_id
            payload["remoteStartId"] = command.remote_start_id
            payload["idToken"] = {
                "idToken": command.id_token,
                "type": command.id_token_type,
            }
            return "RequestStartTransaction", payload
        case RemoteStop():
            return "RequestStopTransaction", {"transactionId": command.transaction_id}
        case OcppCall():
            if command.action not in CSMS_ACTIONS:
                raise CommandNotSent(
                    CommandOutcome.NOT_SUPPORTED,
                    f"{command.action} is not a CSMS-initiated OCPP 2.0.1 action",
                )
            return command.action, command.payload
        case _:
            assert_never(command)
