"""OCPP 2.0.1 payloads <-> the bus contract, on exact wire payloads."""

import dataclasses
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from ocpp.messages import Call, CallResult, validate_payload
from ocpp.v201 import call as v201_calls

from bus.contract import (
    AuthorizationStatus,
    AuthorizeDecision,
    AuthorizeRequest,
    BootDecision,
    BootRequest,
    CommandOutcome,
    DecisionError,
    IdTokenInfo,
    MeterReadings,
    MeterSample,
    OcppCall,
    OcppMessage,
    OcppReply,
    OcppVersion,
    RegistrationStatus,
    RemoteStart,
    RemoteStop,
    ReportedVariable,
    StartDecision,
    StatusChanged,
    StopDecision,
    TransactionDecision,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    VariablesReported,
)
from spr_gateway.dialect import DecisionRoute, EventRoute, LocalRoute
from spr_gateway.errors import CallErrorReply, CommandNotSent, UnexpectedDecision
from spr_gateway.framing import FrameFault, result_frame
from spr_gateway.v201 import DIALECT, transactions, translate

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 12, 30, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 1, 13, 0, 0, tzinfo=UTC)
ACCEPTED = IdTokenInfo(status=AuthorizationStatus.ACCEPTED)

# Every action of the 2.0.1 schemas, both directions.
ALL_ACTIONS = frozenset(
    name
    for name, value in vars(v201_calls).items()
    if dataclasses.is_dataclass(value) and value.__module__ == v201_calls.__name__
)


def energy(
    value: float, *, at: str = "2025-03-01T12:00:00Z", **fields: Any
) -> dict[str, Any]:
    """A MeterValueType with one sampled value."""
    return {"timestamp": at, "sampledValue": [{"value": value, **fields}]}


def sample(value: str, *, at: datetime = T0, **fields: str) -> MeterSample:
    """A MeterSample with the 2.0.1 defaults."""
    defaults = {
        "measurand": "Energy.Active.Import.Register",
        "unit": "Wh",
        "phase": "",
        "location": "Outlet",
        "context": "Sample.Periodic",
    }
    return MeterSample(timestamp=at, value=Decimal(value), **(defaults | fields))


def transaction(event_type: str, **fields: Any) -> dict[str, Any]:
    """A minimal TransactionEvent request of ``event_type``."""
    return {
        "eventType": event_type,
        "timestamp": "2025-03-01T12:00:00Z",
        "triggerReason": "Authorized",
        "seqNo": 0,
        "transactionInfo": {"transactionId": "tx-1"},
    } | fields


# -- charger -> SG -------------------------------------------------------------


def test_boot_notification_becomes_boot_request() -> None:
    payload = {
        "reason": "PowerUp",
        "chargingStation": {
            "model": "AC-22",
            "vendorName": "Acme",
            "serialNumber": "SN-1",
            "firmwareVersion": "2.0.1-a",
            "modem": {"iccid": "8931", "imsi": "2620"},
        },
    }

    assert translate.boot_request(payload) == BootRequest(
        vendor="Acme",
        model="AC-22",
        serial_number="SN-1",
        firmware_version="2.0.1-a",
        iccid="8931",
        imsi="2620",
    )


def test_minimal_boot_notification() -> None:
    payload = {
        "reason": "Unknown",
        "chargingStation": {"model": "AC-22", "vendorName": "Acme"},
    }

    assert translate.boot_request(payload) == BootRequest(vendor="Acme", model="AC-22")


def test_authorize_keeps_the_id_token_type() -> None:
    payload = {"idToken": {"idToken": "04A2B3", "type": "ISO14443"}}

    assert translate.authorize_request(payload) == AuthorizeRequest(
        id_token="04A2B3", id_token_type="ISO14443"
    )


def test_status_notification_names_evse_and_connector() -> None:
    payload = {
        "timestamp": "2025-03-01T12:00:00Z",
        "connectorStatus": "Occupied",
        "evseId": 2,
        "connectorId": 1,
    }

    assert translate.status_changed(payload) == StatusChanged(
        connector_id=2, evse_connector_id=1, status="Occupied", timestamp=T0
    )


def test_a_timestamp_that_is_not_a_date_time_is_refused() -> None:
    payload = {
        "timestamp": "yesterday",
        "connectorStatus": "Available",
        "evseId": 1,
        "connectorId": 1,
    }

    with pytest.raises(CallErrorReply) as caught:
        translate.status_changed(payload)

    assert caught.value.code == "PropertyConstraintViolation"


def test_meter_values_fill_in_the_2_0_1_defaults() -> None:
    payload = {"evseId": 1, "meterValue": [energy(1500.5)]}

    assert translate.meter_readings(payload) == MeterReadings(
        connector_id=1, samples=(sample("1500.5"),)
    )


def test_meter_values_keep_every_sampled_field() -> None:
    payload = {
        "evseId": 1,
        "meterValue": [
            {
                "timestamp": "2025-03-01T12:30:00Z",
                "sampledValue": [
                    {
                        "value": 7.4,
                        "context": "Sample.Clock",
                        "measurand": "Power.Active.Import",
                        "phase": "L1",
                        "location": "Inlet",
                        "unitOfMeasure": {"unit": "kW"},
                    },
                    {
                        "value": 12,
                        "signedMeterValue": {
                            "signedMeterData": "b64",
                            "signingMethod": "ECDSA",
                            "encodingMethod": "OCMF",
                            "publicKey": "pk",
                        },
                    },
                ],
            }
        ],
    }

    assert translate.meter_readings(payload).samples == (
        sample(
            "7.4",
            at=T1,
            context="Sample.Clock",
            measurand="Power.Active.Import",
            phase="L1",
            location="Inlet",
            unit="kW",
        ),
        # The signed value keeps its number; the signature has no place yet.
        sample("12", at=T1),
    )


@pytest.mark.parametrize(
    ("value", "unit", "expected", "wh"),
    [
        (1.5, {"unit": "kWh"}, "1.5", "1500.0"),
        (1.5, {"multiplier": 3}, "1500.0", "1500.0"),
        (2, {"unit": "kWh", "multiplier": 1}, "20", "20000"),
        (1500, {"multiplier": -3}, "1.500", "1.500"),
        (0.1, {}, "0.1", "0.1"),
    ],
)
def test_a_multiplier_scales_the_value_in_its_unit(
    value: float, unit: dict[str, Any], expected: str, wh: str
) -> None:
    payload = {"evseId": 1, "meterValue": [energy(value, unitOfMeasure=unit)]}

    (reading,) = translate.meter_readings(payload).samples

    assert reading.value == Decimal(expected)
    assert str(reading.value) == expected
    assert reading.unit == unit.get("unit", "Wh")
    assert reading.energy_wh() == Decimal(wh)


@pytest.mark.parametrize(
    ("value", "multiplier"),
    [(float("nan"), 0), (float("inf"), 0), (float("-inf"), 3), (1, 10**7)],
)
def test_a_sampled_value_that_is_no_finite_number_is_refused(
    value: float, multiplier: int
) -> None:
    payload = {
        "evseId": 1,
        "meterValue": [energy(value, unitOfMeasure={"multiplier": multiplier})],
    }

    with pytest.raises(CallErrorReply) as caught:
        translate.meter_readings(payload)

    assert caught.value.code == "PropertyConstraintViolation"


def test_notify_report_becomes_one_variable_per_attribute() -> None:
    payload = {
        "requestId": 7,
        "generatedAt": "2025-03-01T12:00:00Z",
        "seqNo": 0,
        "tbc": True,
        "reportData": [
            {
                "component": {
                    "name": "EVSE",
                    "instance": "left",
                    "evse": {"id": 1, "connectorId": 2},
                },
                "variable": {"name": "Power", "instance": "max"},
                "variableAttribute": [
                    {
                        "type": "Actual",
                        "value": "22000",
                        "mutability": "ReadOnly",
                        "persistent": True,
                        "constant": False,
                    },
                    {"type": "MaxSet", "value": "11000"},
                ],
                "variableCharacteristics": {
                    "unit": "W",
                    "dataType": "decimal",
                    "supportsMonitoring": True,
                },
            },
            {
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
                "variableAttribute": [{}],
            },
        ],
    }

    assert translate.variables_reported(payload) == VariablesReported(
        request_id=7,
        seq_no=0,
        tbc=True,
        generated_at=T0,
        variables=(
            ReportedVariable(
                component="EVSE",
                component_instance="left",
                evse_id=1,
                connector_id=2,
                variable="Power",
                variable_instance="max",
                attribute_type="Actual",
                value="22000",
                mutability="ReadOnly",
                persistent=True,
                constant=False,
                data_type="decimal",
                unit="W",
            ),
            ReportedVariable(
                component="EVSE",
                component_instance="left",
                evse_id=1,
                connector_id=2,
                variable="Power",
                variable_instance="max",
                attribute_type="MaxSet",
                value="11000",
                data_type="decimal",
                unit="W",
            ),
            ReportedVariable(component="OCPPCommCtrlr", variable="HeartbeatInterval"),
        ),
    )


def test_notify_report_without_report_data() -> None:
    payload = {"requestId": 7, "generatedAt": "2025-03-01T12:00:00Z", "seqNo": 3}

    assert translate.variables_reported(payload) == VariablesReported(
        request_id=7, seq_no=3, generated_at=T0
    )


def test_opaque_message_keeps_action_and_payload() -> None:
    payload = {"status": "Installed", "requestId": 3}

    assert translate.ocpp_message("FirmwareStatusNotification", payload) == (
        OcppMessage(action="FirmwareStatusNotification", payload=payload)
    )


# -- TransactionEvent ----------------------------------------------------------


def test_started_fills_every_field_of_the_contract() -> None:
    payload = transaction(
        "Started",
        triggerReason="RemoteStart",
        seqNo=0,
        offline=True,
        reservationId=5,
        transactionInfo={
            "transactionId": "tx-1",
            "chargingState": "EVConnected",
            "remoteStartId": 99,
        },
        evse={"id": 2, "connectorId": 1},
        idToken={"idToken": "04A2B3", "type": "ISO14443"},
        meterValue=[
            energy(1200, context="Sample.Periodic"),
            energy(1234, context="Transaction.Begin"),
        ],
    )

    assert transactions.transaction_event(payload) == TransactionStarted(
        transaction_id="tx-1",
        connector_id=2,
        evse_connector_id=1,
        id_token="04A2B3",
        id_token_type="ISO14443",
        meter_start_wh=Decimal(1234),
        timestamp=T0,
        reservation_id=5,
        remote_start_id=99,
        seq_no=0,
        offline=True,
        trigger_reason="RemoteStart",
        samples=(sample("1200"), sample("1234", context="Transaction.Begin")),
    )


def test_started_before_any_token_or_evse_is_known() -> None:
    payload = transaction("Started", triggerReason="CablePluggedIn")

    assert transactions.transaction_event(payload) == TransactionStarted(
        transaction_id="tx-1",
        connector_id=0,
        id_token=None,
        meter_start_wh=None,
        timestamp=T0,
        seq_no=0,
        trigger_reason="CablePluggedIn",
    )


def test_started_without_authorization_keeps_the_empty_token() -> None:
    payload = transaction(
        "Started",
        evse={"id": 1},
        idToken={"idToken": "", "type": "NoAuthorization"},
    )

    event = transactions.transaction_event(payload)

    assert isinstance(event, TransactionStarted)
    assert (event.id_token, event.id_token_type) == ("", "NoAuthorization")
    assert (event.connector_id, event.evse_connector_id) == (1, None)


@pytest.mark.parametrize(
    ("meter_values", "expected"),
    [
        # No Transaction.Begin register: the first imported-energy register.
        (
            [
                energy(230, measurand="Voltage", unitOfMeasure={"unit": "V"}),
                energy(400, phase="L1"),
                energy(1.5, unitOfMeasure={"unit": "kWh"}),
                energy(1600),
            ],
            Decimal("1500.0"),
        ),
        # A register in a unit that is no energy unit is not one.
        ([energy(5, unitOfMeasure={"unit": "varh"})], None),
    ],
)
def test_meter_start_falls_back_to_the_first_energy_register(
    meter_values: list[dict[str, Any]], expected: Decimal | None
) -> None:
    payload = transaction("Started", evse={"id": 1}, meterValue=meter_values)

    event = transactions.transaction_event(payload)

    assert isinstance(event, TransactionStarted)
    assert event.meter_start_wh == expected


def test_updated_carries_state_token_and_samples() -> None:
    payload = transaction(
        "Updated",
        triggerReason="ChargingStateChanged",
        seqNo=3,
        transactionInfo={
            "transactionId": "tx-1",
            "chargingState": "Charging",
            "remoteStartId": 99,
        },
        evse={"id": 2, "connectorId": 1},
        idToken={"idToken": "04A2B3", "type": "ISO14443"},
        meterValue=[energy(2500, at="2025-03-01T12:30:00Z")],
    )

    assert transactions.transaction_event(payload) == TransactionUpdated(
        transaction_id="tx-1",
        timestamp=T0,
        connector_id=2,
        evse_connector_id=1,
        id_token="04A2B3",
        id_token_type="ISO14443",
        charging_state="Charging",
        remote_start_id=99,
        seq_no=3,
        trigger_reason="ChargingStateChanged",
        samples=(sample("2500", at=T1),),
    )


def test_minimal_updated() -> None:
    payload = transaction("Updated", triggerReason="MeterValuePeriodic", seqNo=1)

    assert transactions.transaction_event(payload) == TransactionUpdated(
        transaction_id="tx-1",
        timestamp=T0,
        seq_no=1,
        trigger_reason="MeterValuePeriodic",
    )


def test_ended_takes_the_transaction_end_register() -> None:
    payload = transaction(
        "Ended",
        timestamp="2025-03-01T14:00:00+01:00",
        triggerReason="StopAuthorized",
        seqNo=7,
        transactionInfo={"transactionId": "tx-1", "stoppedReason": "Remote"},
        evse={"id": 2, "connectorId": 1},
        idToken={"idToken": "04A2B3", "type": "ISO14443"},
        meterValue=[
            energy(9000, at="2025-03-01T13:00:00Z", context="Transaction.End"),
            energy(9100, at="2025-03-01T13:00:00Z"),
        ],
    )

    assert transactions.transaction_event(payload) == TransactionEnded(
        transaction_id="tx-1",
        meter_stop_wh=Decimal(9000),
        timestamp=T2,
        id_token="04A2B3",
        id_token_type="ISO14443",
        reason="Remote",
        connector_id=2,
        evse_connector_id=1,
        seq_no=7,
        trigger_reason="StopAuthorized",
        samples=(
            sample("9000", at=T2, context="Transaction.End"),
            sample("9100", at=T2),
        ),
    )


@pytest.mark.parametrize(
    ("meter_values", "expected"),
    [
        ([energy(8000), energy(8.5, unitOfMeasure={"unit": "kWh"})], Decimal(8500)),
        ([energy(20, measurand="SoC", unitOfMeasure={"unit": "Percent"})], None),
        ([], None),
    ],
)
def test_meter_stop_falls_back_to_the_last_energy_register(
    meter_values: list[dict[str, Any]], expected: Decimal | None
) -> None:
    fields: dict[str, Any] = {"meterValue": meter_values} if meter_values else {}
    payload = transaction("Ended", triggerReason="EVDeparted", **fields)

    event = transactions.transaction_event(payload)

    assert isinstance(event, TransactionEnded)
    assert event.meter_stop_wh == expected


def test_ended_without_a_stopped_reason_was_stopped_locally() -> None:
    payload = transaction("Ended", triggerReason="StopAuthorized")

    assert transactions.transaction_event(payload) == TransactionEnded(
        transaction_id="tx-1",
        meter_stop_wh=None,
        timestamp=T0,
        reason="Local",
        seq_no=0,
        trigger_reason="StopAuthorized",
    )


def test_a_transaction_event_with_a_bad_sample_is_refused() -> None:
    payload = transaction("Updated", meterValue=[energy(float("nan"))])

    with pytest.raises(CallErrorReply) as caught:
        transactions.transaction_event(payload)

    assert caught.value.code == "PropertyConstraintViolation"


# -- SG -> charger: answers ----------------------------------------------------


def test_heartbeat_response() -> None:
    assert translate.heartbeat_response(T0) == {
        "currentTime": "2025-03-01T12:00:00.000Z"
    }


def test_boot_decision_becomes_boot_response() -> None:
    decision = BootDecision(
        status=RegistrationStatus.PENDING, interval_s=60, current_time=T0
    )

    assert translate.boot_response(decision) == {
        "currentTime": "2025-03-01T12:00:00.000Z",
        "interval": 60,
        "status": "Pending",
    }


def test_authorize_decision_omits_absent_id_token_info_fields() -> None:
    decision = AuthorizeDecision(
        id_token_info=IdTokenInfo(status=AuthorizationStatus.BLOCKED)
    )

    assert translate.authorize_response(decision) == {
        "idTokenInfo": {"status": "Blocked"}
    }


def test_id_token_info_with_cache_expiry_and_group() -> None:
    plus_two = timezone(timedelta(hours=2))
    info = IdTokenInfo(
        status=AuthorizationStatus.ACCEPTED,
        expiry_date=datetime(2025, 4, 1, tzinfo=UTC),
        cache_expiry_date=datetime(2025, 3, 2, 14, 0, tzinfo=plus_two),
        parent_id_token="FLEET-1",
    )

    assert translate.id_token_info(info) == {
        "status": "Accepted",
        "cacheExpiryDateTime": "2025-03-02T12:00:00.000Z",
        "groupIdToken": {"idToken": "FLEET-1", "type": "Central"},
    }


def test_id_token_info_falls_back_to_the_expiry_date() -> None:
    info = IdTokenInfo(status=AuthorizationStatus.EXPIRED, expiry_date=T0)

    assert translate.id_token_info(info) == {
        "status": "Expired",
        "cacheExpiryDateTime": "2025-03-01T12:00:00.000Z",
    }


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        (StartDecision(transaction_id="tx-1", id_token_info=None), {}),
        (
            StartDecision(transaction_id="tx-1", id_token_info=ACCEPTED),
            {"idTokenInfo": {"status": "Accepted"}},
        ),
        (TransactionDecision(), {}),
        (
            # 2.0.1 carries totalCost only once charging has ended.
            TransactionDecision(id_token_info=ACCEPTED, total_cost=Decimal("4.2")),
            {"idTokenInfo": {"status": "Accepted"}},
        ),
        (StopDecision(), {}),
        (StopDecision(total_cost=Decimal("12.345")), {"totalCost": 12.35}),
        (StopDecision(total_cost=Decimal("0")), {"totalCost": 0.0}),
    ],
)
def test_transaction_decisions_become_transaction_event_responses(
    decision: StartDecision | TransactionDecision | StopDecision,
    expected: dict[str, Any],
) -> None:
    assert transactions.transaction_event_response(decision) == expected


def test_total_cost_goes_on_the_wire_in_cents() -> None:
    payload = transactions.transaction_event_response(
        StopDecision(total_cost=Decimal("1234.5"))
    )

    assert result_frame("t-1", payload) == '[3,"t-1",{"totalCost":1234.5}]'
    payload = transactions.transaction_event_response(
        StopDecision(total_cost=Decimal("7.129"))
    )
    assert json.loads(result_frame("t-1", payload))[2] == {"totalCost": 7.13}


@pytest.mark.parametrize(
    "decision",
    [
        OcppReply(payload={}),
        AuthorizeDecision(id_token_info=ACCEPTED),
        BootDecision(status=RegistrationStatus.ACCEPTED, interval_s=300),
    ],
)
def test_a_transaction_decision_of_the_wrong_kind_is_unusable(
    decision: OcppReply | AuthorizeDecision | BootDecision,
) -> None:
    with pytest.raises(UnexpectedDecision):
        transactions.transaction_event_response(decision)


def test_ocpp_reply_is_passed_through() -> None:
    reply = OcppReply(payload={"status": "UnknownVendorId"})

    assert translate.ocpp_reply(reply) == {"status": "UnknownVendorId"}


def test_a_decision_of_the_wrong_kind_is_unusable() -> None:
    with pytest.raises(UnexpectedDecision):
        translate.boot_response(DecisionError())


@pytest.mark.parametrize(
    ("action", "payload"),
    [
        (
            "TransactionEvent",
            transactions.transaction_event_response(
                TransactionDecision(
                    id_token_info=IdTokenInfo(
                        status=AuthorizationStatus.ACCEPTED,
                        cache_expiry_date=T0,
                        parent_id_token="FLEET-1",
                    ),
                    total_cost=Decimal("3.14159"),
                )
            ),
        ),
        (
            "BootNotification",
            translate.boot_response(
                BootDecision(status=RegistrationStatus.ACCEPTED, interval_s=300)
            ),
        ),
        (
            "Authorize",
            translate.authorize_response(AuthorizeDecision(id_token_info=ACCEPTED)),
        ),
        ("Heartbeat", translate.heartbeat_response(T0)),
    ],
)
async def test_responses_fit_the_2_0_1_schemas(
    action: str, payload: dict[str, Any]
) -> None:
    await validate_payload(CallResult("r-1", payload, action), OcppVersion.V201.value)


# -- SG -> charger: commands ---------------------------------------------------


def test_remote_start_becomes_request_start_transaction() -> None:
    command = RemoteStart(connector_id=2, id_token="TAG-1", remote_start_id=99)

    assert translate.command_call(command) == (
        "RequestStartTransaction",
        {
            "evseId": 2,
            "remoteStartId": 99,
            "idToken": {"idToken": "TAG-1", "type": "Central"},
        },
    )


def test_remote_start_on_any_evse_with_a_typed_token() -> None:
    command = RemoteStart(
        connector_id=None,
        id_token="04A2B3",
        remote_start_id=1,
        id_token_type="ISO14443",
    )

    assert translate.command_call(command) == (
        "RequestStartTransaction",
        {"remoteStartId": 1, "idToken": {"idToken": "04A2B3", "type": "ISO14443"}},
    )


def test_remote_start_without_a_remote_start_id_is_not_sent() -> None:
    with pytest.raises(CommandNotSent) as caught:
        translate.command_call(RemoteStart(connector_id=1, id_token="TAG-1"))

    assert caught.value.outcome is CommandOutcome.CALL_ERROR
    assert "remote start id" in caught.value.error


def test_remote_stop_keeps_the_chargers_transaction_id() -> None:
    assert translate.command_call(RemoteStop(transaction_id="tx-1")) == (
        "RequestStopTransaction",
        {"transactionId": "tx-1"},
    )


def test_ocpp_call_is_sent_as_is() -> None:
    payload = {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"}}]}
    command = OcppCall(action="GetVariables", payload=payload)

    assert translate.command_call(command) == ("GetVariables", payload)


@pytest.mark.parametrize(
    "action", ["BootNotification", "RemoteStartTransaction", "GetConfiguration", "../x"]
)
def test_ocpp_call_of_no_2_0_1_csms_action_is_not_supported(action: str) -> None:
    with pytest.raises(CommandNotSent) as caught:
        translate.command_call(OcppCall(action=action, payload={}))

    assert caught.value.outcome is CommandOutcome.NOT_SUPPORTED


async def test_commands_fit_the_2_0_1_schemas() -> None:
    for command in (
        RemoteStart(connector_id=2, id_token="TAG-1", remote_start_id=99),
        RemoteStop(transaction_id="tx-1"),
    ):
        action, payload = translate.command_call(command)
        await validate_payload(Call("c-1", action, payload), OcppVersion.V201.value)


# -- the dialect ---------------------------------------------------------------


def test_every_charger_initiated_action_has_a_route() -> None:
    charger_actions = ALL_ACTIONS - translate.CSMS_ACTIONS | {"DataTransfer"}

    assert set(DIALECT.routes) == charger_actions
    assert translate.CSMS_ACTIONS <= ALL_ACTIONS
    assert len(charger_actions) == 25


@pytest.mark.parametrize(
    ("action", "route"),
    [
        ("Heartbeat", LocalRoute),
        ("StatusNotification", EventRoute),
        ("MeterValues", EventRoute),
        ("NotifyReport", EventRoute),
        ("SecurityEventNotification", EventRoute),
        ("ReservationStatusUpdate", EventRoute),
        ("BootNotification", DecisionRoute),
        ("Authorize", DecisionRoute),
        ("TransactionEvent", DecisionRoute),
        ("DataTransfer", DecisionRoute),
        ("SignCertificate", DecisionRoute),
        ("NotifyEVChargingNeeds", DecisionRoute),
    ],
)
def test_routes_by_kind(action: str, route: type[object]) -> None:
    assert isinstance(DIALECT.routes[action], route)


def test_opaque_routes_relay_action_and_payload() -> None:
    notification = DIALECT.routes["SecurityEventNotification"]
    request = DIALECT.routes["SignCertificate"]
    assert isinstance(notification, EventRoute)
    assert isinstance(request, DecisionRoute)
    event = {"type": "FirmwareUpdated", "timestamp": "2025-03-01T12:00:00Z"}

    assert notification.to_event(event) == OcppMessage(
        action="SecurityEventNotification", payload=event
    )
    assert notification.respond() == {}
    assert request.to_event({"csr": "x"}) == OcppMessage(
        action="SignCertificate", payload={"csr": "x"}
    )


def test_dialect_spells_2_0_1_errors() -> None:
    assert (DIALECT.subprotocol, DIALECT.version) == ("ocpp2.0.1", OcppVersion.V201)
    assert DIALECT.frame_faults == {
        FrameFault.NOT_JSON: "RpcFrameworkError",
        FrameFault.NOT_RPC: "RpcFrameworkError",
        FrameFault.UNKNOWN_TYPE: "MessageTypeNotSupported",
    }
    for code in ("FormatViolation", "OccurrenceConstraintViolation", "ProtocolError"):
        assert DIALECT.error_code(code) == code
