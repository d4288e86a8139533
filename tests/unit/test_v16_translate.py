"""OCPP 1.6 payloads <-> the bus contract, on exact wire payloads."""

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from bus.contract import (
    AuthorizationStatus,
    AuthorizeDecision,
    AuthorizeRequest,
    BootDecision,
    BootRequest,
    CommandOutcome,
    IdTokenInfo,
    MeterReadings,
    MeterSample,
    OcppCall,
    OcppMessage,
    OcppReply,
    RegistrationStatus,
    RemoteStart,
    RemoteStop,
    StartDecision,
    StatusChanged,
    StopDecision,
    TransactionEnded,
    TransactionStarted,
)
from spr_gateway.errors import CallErrorReply, CommandNotSent, UnexpectedDecision
from spr_gateway.timestamps import format_datetime, parse_datetime
from spr_gateway.v16 import translate

pytestmark = pytest.mark.timeout(10)

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)


# -- charger -> SG -------------------------------------------------------------


def test_boot_notification_becomes_boot_request() -> None:
    payload = {
        "chargePointVendor": "Acme",
        "chargePointModel": "AC-22",
        "chargePointSerialNumber": "SN-1",
        "chargeBoxSerialNumber": "BOX-1",
        "firmwareVersion": "1.2.3",
        "iccid": "8931",
        "imsi": "2620",
        "meterType": "EM340",
        "meterSerialNumber": "M-9",
    }

    assert translate.boot_request(payload) == BootRequest(
        vendor="Acme",
        model="AC-22",
        serial_number="SN-1",
        firmware_version="1.2.3",
        iccid="8931",
        imsi="2620",
        meter_type="EM340",
        meter_serial_number="M-9",
    )


def test_boot_notification_falls_back_to_charge_box_serial() -> None:
    payload = {
        "chargePointVendor": "Acme",
        "chargePointModel": "AC-22",
        "chargeBoxSerialNumber": "BOX-1",
    }

    assert translate.boot_request(payload) == BootRequest(
        vendor="Acme", model="AC-22", serial_number="BOX-1"
    )


def test_authorize_becomes_authorize_request() -> None:
    assert translate.authorize_request({"idTag": "TAG-1"}) == AuthorizeRequest(
        id_token="TAG-1"
    )


def test_start_transaction_becomes_transaction_started() -> None:
    payload = {
        "connectorId": 2,
        "idTag": "TAG-1",
        "meterStart": 12345,
        "timestamp": "2025-03-01T12:00:00Z",
        "reservationId": 7,
    }

    event = translate.transaction_started(payload)

    assert event == TransactionStarted(
        connector_id=2,
        id_token="TAG-1",
        meter_start_wh=Decimal(12345),
        timestamp=T0,
        reservation_id=7,
    )
    assert event.timestamp.tzinfo is not None


def test_stop_transaction_becomes_transaction_ended_with_samples() -> None:
    payload = {
        "transactionId": 42,
        "meterStop": 20000,
        "timestamp": "2025-03-01T13:00:00.500+01:00",
        "idTag": "TAG-1",
        "reason": "Local",
        "transactionData": [
            {
                "timestamp": "2025-03-01T12:30:00Z",
                "sampledValue": [
                    {"value": "15000"},
                    {
                        "value": "7.4",
                        "measurand": "Power.Active.Import",
                        "unit": "kW",
                        "phase": "L1",
                        "location": "Outlet",
                        "context": "Sample.Periodic",
                    },
                ],
            }
        ],
    }

    event = translate.transaction_ended(payload)

    sampled_at = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
    assert event == TransactionEnded(
        transaction_id="42",
        meter_stop_wh=Decimal(20000),
        timestamp=datetime(2025, 3, 1, 12, 0, 0, 500000, tzinfo=UTC),
        id_token="TAG-1",
        reason="Local",
        samples=(
            MeterSample(timestamp=sampled_at, value=Decimal("15000")),
            MeterSample(
                timestamp=sampled_at,
                value=Decimal("7.4"),
                measurand="Power.Active.Import",
                unit="kW",
                phase="L1",
                location="Outlet",
                context="Sample.Periodic",
            ),
        ),
    )


def test_minimal_stop_transaction() -> None:
    payload = {"transactionId": 1, "meterStop": 0, "timestamp": "2025-03-01T12:00:00Z"}

    assert translate.transaction_ended(payload) == TransactionEnded(
        transaction_id="1", meter_stop_wh=Decimal(0), timestamp=T0
    )


def test_meter_values_become_meter_readings_with_defaults() -> None:
    payload = {
        "connectorId": 1,
        "transactionId": 42,
        "meterValue": [
            {
                "timestamp": "2025-03-01T12:00:00Z",
                "sampledValue": [
                    {"value": "1234.5"},
                    {"value": "deadbeef", "format": "SignedData"},
                ],
            }
        ],
    }

    assert translate.meter_readings(payload) == MeterReadings(
        connector_id=1,
        transaction_id="42",
        samples=(
            MeterSample(
                timestamp=T0,
                value=Decimal("1234.5"),
                measurand="Energy.Active.Import.Register",
                unit="Wh",
                phase="",
                location="",
                context="",
            ),
        ),
    )


def test_meter_values_without_transaction() -> None:
    payload = {
        "connectorId": 0,
        "meterValue": [
            {"timestamp": "2025-03-01T12:00:00Z", "sampledValue": [{"value": "1"}]}
        ],
    }

    assert translate.meter_readings(payload).transaction_id is None


@pytest.mark.parametrize("value", ["abc", "NaN", "Infinity", ""])
def test_a_sampled_value_that_is_not_a_number_is_refused(value: str) -> None:
    payload = {
        "connectorId": 1,
        "meterValue": [
            {"timestamp": "2025-03-01T12:00:00Z", "sampledValue": [{"value": value}]}
        ],
    }

    with pytest.raises(CallErrorReply) as caught:
        translate.meter_readings(payload)

    assert caught.value.code == "PropertyConstraintViolation"


def test_status_notification_becomes_status_changed() -> None:
    payload = {
        "connectorId": 1,
        "errorCode": "GroundFailure",
        "status": "Faulted",
        "info": "RCD tripped",
        "timestamp": "2025-03-01T12:00:00Z",
        "vendorId": "acme",
        "vendorErrorCode": "E42",
    }

    assert translate.status_changed(payload) == StatusChanged(
        connector_id=1,
        status="Faulted",
        error_code="GroundFailure",
        info="RCD tripped",
        vendor_id="acme",
        vendor_error_code="E42",
        timestamp=T0,
    )


def test_minimal_status_notification() -> None:
    payload = {"connectorId": 0, "errorCode": "NoError", "status": "Available"}

    assert translate.status_changed(payload) == StatusChanged(
        connector_id=0, status="Available"
    )


def test_a_timestamp_that_is_not_a_date_time_is_refused() -> None:
    payload = {
        "connectorId": 1,
        "errorCode": "NoError",
        "status": "Available",
        "timestamp": "yesterday",
    }

    with pytest.raises(CallErrorReply) as caught:
        translate.status_changed(payload)

    assert caught.value.code == "PropertyConstraintViolation"


def test_opaque_message_keeps_action_and_payload() -> None:
    payload = {"status": "Uploaded"}

    assert translate.ocpp_message("DiagnosticsStatusNotification", payload) == (
        OcppMessage(action="DiagnosticsStatusNotification", payload=payload)
    )


# -- SG -> charger: answers ----------------------------------------------------


def test_heartbeat_response() -> None:
    assert translate.heartbeat_response(T0) == {
        "currentTime": "2025-03-01T12:00:00.000Z"
    }


def test_boot_decision_becomes_boot_response() -> None:
    decision = BootDecision(
        status=RegistrationStatus.ACCEPTED, interval_s=300, current_time=T0
    )

    assert translate.boot_response(decision) == {
        "status": "Accepted",
        "currentTime": "2025-03-01T12:00:00.000Z",
        "interval": 300,
    }


def test_authorize_decision_omits_absent_id_tag_info_fields() -> None:
    decision = AuthorizeDecision(
        id_token_info=IdTokenInfo(status=AuthorizationStatus.BLOCKED)
    )

    assert translate.authorize_response(decision) == {
        "idTagInfo": {"status": "Blocked"}
    }


def test_authorize_decision_with_every_id_tag_info_field() -> None:
    plus_two = timezone(timedelta(hours=2))
    decision = AuthorizeDecision(
        id_token_info=IdTokenInfo(
            status=AuthorizationStatus.ACCEPTED,
            expiry_date=datetime(2025, 3, 2, 14, 0, tzinfo=plus_two),
            parent_id_token="FLEET-1",
        )
    )

    assert translate.authorize_response(decision) == {
        "idTagInfo": {
            "status": "Accepted",
            "expiryDate": "2025-03-02T12:00:00.000Z",
            "parentIdTag": "FLEET-1",
        }
    }


def test_start_decision_becomes_integer_transaction_id() -> None:
    decision = StartDecision(
        transaction_id="42",
        id_token_info=IdTokenInfo(status=AuthorizationStatus.ACCEPTED),
    )

    assert translate.start_transaction_response(decision) == {
        "transactionId": 42,
        "idTagInfo": {"status": "Accepted"},
    }


def test_start_decision_with_a_non_integer_transaction_id_is_unusable() -> None:
    decision = StartDecision(
        transaction_id="tx-abc",
        id_token_info=IdTokenInfo(status=AuthorizationStatus.ACCEPTED),
    )

    with pytest.raises(UnexpectedDecision):
        translate.start_transaction_response(decision)


def test_stop_decision_with_and_without_id_tag_info() -> None:
    assert translate.stop_transaction_response(StopDecision()) == {}
    verdict = IdTokenInfo(status=AuthorizationStatus.EXPIRED)
    assert translate.stop_transaction_response(StopDecision(id_token_info=verdict)) == {
        "idTagInfo": {"status": "Expired"}
    }


def test_ocpp_reply_is_passed_through() -> None:
    reply = OcppReply(payload={"status": "Accepted", "data": "x"})

    assert translate.ocpp_reply(reply) == {"status": "Accepted", "data": "x"}


def test_a_decision_of_the_wrong_kind_is_unusable() -> None:
    with pytest.raises(UnexpectedDecision):
        translate.boot_response(OcppReply(payload={}))


# -- SG -> charger: commands ---------------------------------------------------


def test_remote_start_with_and_without_connector() -> None:
    assert translate.command_call(RemoteStart(connector_id=1, id_token="TAG-1")) == (
        "RemoteStartTransaction",
        {"connectorId": 1, "idTag": "TAG-1"},
    )
    assert translate.command_call(
        RemoteStart(connector_id=None, id_token="TAG-1", remote_start_id=9)
    ) == ("RemoteStartTransaction", {"idTag": "TAG-1"})


def test_remote_stop_sends_an_integer_transaction_id() -> None:
    assert translate.command_call(RemoteStop(transaction_id="42")) == (
        "RemoteStopTransaction",
        {"transactionId": 42},
    )


def test_remote_stop_of_a_non_integer_transaction_is_not_sent() -> None:
    with pytest.raises(CommandNotSent) as caught:
        translate.command_call(RemoteStop(transaction_id="tx-abc"))

    assert caught.value.outcome is CommandOutcome.CALL_ERROR


def test_ocpp_call_is_sent_as_is() -> None:
    command = OcppCall(action="Reset", payload={"type": "Soft"})

    assert translate.command_call(command) == ("Reset", {"type": "Soft"})


@pytest.mark.parametrize("action", ["BootNotification", "GetVariables", "../x"])
def test_ocpp_call_of_no_1_6_csms_action_is_not_supported(action: str) -> None:
    with pytest.raises(CommandNotSent) as caught:
        translate.command_call(OcppCall(action=action, payload={}))

    assert caught.value.outcome is CommandOutcome.NOT_SUPPORTED


# -- date-times ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-03-01T12:00:00Z", T0),
        ("2025-03-01T12:00:00", T0),
        ("2025-03-01T14:00:00+02:00", T0),
        ("2025-03-01T12:00:00.123456Z", T0.replace(microsecond=123456)),
    ],
)
def test_parse_datetime_is_aware(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)

    assert parsed == expected
    assert parsed.tzinfo is not None


def test_format_datetime_is_utc_with_z() -> None:
    naive = datetime(2025, 3, 1, 12, 0, 0, 987654)

    assert format_datetime(naive) == "2025-03-01T12:00:00.987Z"
