"""The OCPP 1.6 dialect: routing table, command translation, error spelling."""

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
from spr_gateway.v16 import translate


def _heartbeat() -> Payload:
    return translate.heartbeat_response(utcnow())


def _opaque(action: str) -> partial[OcppMessage]:
    return partial(translate.ocpp_message, action)


ROUTES: Mapping[str, Route] = {
    "Heartbeat": LocalRoute(respond=_heartbeat, seen=HeartbeatSeen),
    "StatusNotification": EventRoute(translate.status_changed),
    "MeterValues": EventRoute(translate.meter_readings),
    "DiagnosticsStatusNotification": EventRoute(
        _opaque("DiagnosticsStatusNotification")
    ),
    "FirmwareStatusNotification": EventRoute(_opaque("FirmwareStatusNotification")),
    # The 1.6 security whitepaper's notifications.
    "SecurityEventNotification": EventRoute(_opaque("SecurityEventNotification")),
    "LogStatusNotification": EventRoute(_opaque("LogStatusNotification")),
    "SignedFirmwareStatusNotification": EventRoute(
        _opaque("SignedFirmwareStatusNotification")
    ),
    # Needs a certificate authority the CSMS does not have yet: NotImplemented.
    "SignCertificate": DecisionRoute(_opaque("SignCertificate"), translate.ocpp_reply),
    "BootNotification": DecisionRoute(translate.boot_request, translate.boot_response),
    "Authorize": DecisionRoute(
        translate.authorize_request, translate.authorize_response
    ),
    "StartTransaction": DecisionRoute(
        translate.transaction_started, translate.start_transaction_response
    ),
    "StopTransaction": DecisionRoute(
        translate.transaction_ended, translate.stop_transaction_response
    ),
    "DataTransfer": DecisionRoute(_opaque("DataTransfer"), translate.ocpp_reply),
}

DIALECT = Dialect(
    subprotocol="ocpp1.6",
    version=OcppVersion.V16,
    routes=ROUTES,
    to_call=translate.command_call,
    # 1.6 has neither RpcFrameworkError nor MessageTypeNotSupported.
    frame_faults={
        FrameFault.NOT_JSON: "FormationViolation",
        FrameFault.NOT_RPC: "ProtocolError",
        FrameFault.UNKNOWN_TYPE: "ProtocolError",
    },
    # The ocpp library validates with 2.0.1's spellings; the 1.6 errata keep
    # FormationViolation and the misspelt OccurenceConstraintViolation.
    error_codes={
        "FormatViolation": "FormationViolation",
        "OccurrenceConstraintViolation": "OccurenceConstraintViolation",
    },
)
