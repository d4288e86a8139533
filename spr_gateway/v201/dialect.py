"""The OCPP 2.0.1 dialect: routing table, command translation, error spelling."""

from collections.abc import Mapping
from functools import partial

from bus.contract import HeartbeatSeen, OcppMessage, OcppVersion, utcnow
from spr_gateway.dialect import (
    DecisionRoute,
    Dialect,
    EventRoute,
    LocalRoute,
    Payload,
    Route,
)
from spr_gateway.framing import FrameFault
from spr_gateway.v201 import transactions, translate

# Notifications whose response is empty: relayed as they are, answered {}
# once the broker has them.
NOTIFICATIONS = (
    "ClearedChargingLimit",
    "FirmwareStatusNotification",
    "LogStatusNotification",
    "NotifyChargingLimit",
    "NotifyCustomerInformation",
    "NotifyDisplayMessages",
    "NotifyEvent",
    "NotifyMonitoringReport",
    "PublishFirmwareStatusNotification",
    "ReportChargingProfiles",
    "ReservationStatusUpdate",
    "SecurityEventNotification",
)

# Requests whose answer is the SG's to give and has no neutral form yet.
OPAQUE_REQUESTS = (
    "DataTransfer",
    "Get15118EVCertificate",
    "GetCertificateStatus",
    "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule",
    "SignCertificate",
)


def _heartbeat() -> Payload:
    return translate.heartbeat_response(utcnow())


def _opaque(action: str) -> partial[OcppMessage]:
    return partial(translate.ocpp_message, action)


ROUTES: Mapping[str, Route] = {
    "Heartbeat": LocalRoute(respond=_heartbeat, seen=HeartbeatSeen),
    "StatusNotification": EventRoute(translate.status_changed),
    "MeterValues": EventRoute(translate.meter_readings),
    "NotifyReport": EventRoute(translate.variables_reported),
    **{action: EventRoute(_opaque(action)) for action in NOTIFICATIONS},
    "BootNotification": DecisionRoute(translate.boot_request, translate.boot_response),
    "Authorize": DecisionRoute(
        translate.authorize_request, translate.authorize_response
    ),
    "TransactionEvent": DecisionRoute(
        transactions.transaction_event, transactions.transaction_event_response
    ),
    **{
        action: DecisionRoute(_opaque(action), translate.ocpp_reply)
        for action in OPAQUE_REQUESTS
    },
}

DIALECT = Dialect(
    subprotocol="ocpp2.0.1",
    version=OcppVersion.V201,
    routes=ROUTES,
    to_call=translate.command_call,
    # OCPP-J 2.0.1 answers an unknown MessageTypeId with MessageTypeNotSupported
    # (its extension fallback) and any other frame that is no RPC message with
    # RpcFrameworkError.
    frame_faults={
        FrameFault.NOT_JSON: "RpcFrameworkError",
        FrameFault.NOT_RPC: "RpcFrameworkError",
        FrameFault.UNKNOWN_TYPE: "MessageTypeNotSupported",
    },
    # The ocpp library already spells its validation errors the 2.0.1 way.
    error_codes={},
)
