"""Charger commands and operations without a network: the calls, the hand-offs.

The integration tests check the common calls on the wire; these pin what
only one version has, the problems of a field a version has no place for,
and which workflow each charger notification is handed over to.
"""

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from api.command_models import LocalListSend, TriggerCreate
from api.operation_models import (
    FirmwareUpdateCreate,
    LogUploadCreate,
    ReservationCreate,
)
from api.problems import ProblemError
from api.smart_charging_models import (
    ChargingProfileClear,
    ChargingProfileSet,
    ChargingSchedule,
    SchedulePeriod,
)
from bus.contract import (
    EventEnvelope,
    OcppMessage,
    OcppVersion,
    StartDecision,
    StopDecision,
    TransactionStarted,
)
from ingress.events import Batch, Handoff, reservation_used
from workflows.operation_types import CHARGER_STATUS, USED, StatusNotice

V16, V201 = OcppVersion.V16, OcppVersion.V201
T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def problem(status: int, kind: str, raised: pytest.ExceptionInfo[ProblemError]) -> None:
    assert (raised.value.status, raised.value.kind) == (status, kind)


# -- Calls -------------------------------------------------------------------------


def tx_profile(transaction_id: str) -> ChargingProfileSet:
    return ChargingProfileSet(
        connector_id=1,
        id=3,
        stack_level=2,
        purpose="TxProfile",
        kind="Relative",
        transaction_id=transaction_id,
        schedule=ChargingSchedule(
            charging_rate_unit="W",
            periods=[SchedulePeriod(start_period=0, limit=Decimal("7400.5"))],
            min_charging_rate=Decimal("1200"),
        ),
    )


def test_a_tx_profile_names_the_transaction_as_each_version_does() -> None:
    v16 = tx_profile("42").call(V16).payload["csChargingProfiles"]
    v201 = tx_profile("a1b2").call(V201).payload["chargingProfile"]

    assert (v16["transactionId"], v201["transactionId"]) == (42, "a1b2")
    assert v16["chargingSchedule"]["minChargingRate"] == 1200.0
    assert v201["chargingSchedule"][0]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 7400.5}
    ]
    with pytest.raises(ProblemError) as raised:
        tx_profile("a1b2").call(V16)
    problem(422, "invalid-request", raised)


def test_clearing_by_criteria_maps_the_purpose() -> None:
    clear = ChargingProfileClear(connector_id=0, purpose="ChargingStationMaxProfile")

    assert clear.call(V16).payload == {
        "connectorId": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
    }
    assert clear.call(V201).payload == {
        "chargingProfileCriteria": {
            "evseId": 0,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
        }
    }
    with pytest.raises(ProblemError) as raised:
        ChargingProfileClear(purpose="ChargingStationExternalConstraints").call(V16)
    problem(409, "wrong-ocpp-version", raised)


def test_a_2_0_1_trigger_names_the_connector_within_the_evse() -> None:
    trigger = TriggerCreate(message="MeterValues", connector_id=2, evse_connector_id=1)

    assert trigger.call(V201).payload == {
        "requestedMessage": "MeterValues",
        "evse": {"id": 2, "connectorId": 1},
    }
    with pytest.raises(ProblemError) as raised:
        trigger.call(V16)
    problem(409, "wrong-ocpp-version", raised)


def test_a_full_local_list_says_every_status() -> None:
    with pytest.raises(ValidationError):
        LocalListSend.model_validate(
            {"version": 1, "updateType": "Full", "tokens": [{"idToken": "A"}]}
        )


@pytest.mark.parametrize(
    ("build", "status", "kind"),
    [
        (
            lambda: FirmwareUpdateCreate(
                location="https://fw.example/a.bin", signature="c2ln"
            ).call(V16, None, T0),
            409,
            "wrong-ocpp-version",
        ),
        (
            lambda: LogUploadCreate(
                location="ftp://logs.example/", log_type="SecurityLog"
            ).call(V16, None),
            409,
            "wrong-ocpp-version",
        ),
        (
            lambda: ReservationCreate(id_token="X" * 21, expires_at=T0).reserve(V16, 1),
            422,
            "invalid-request",
        ),
        (
            lambda: ReservationCreate(
                id_token="TAG", id_token_type="Central", expires_at=T0
            ).reserve(V16, 1),
            409,
            "wrong-ocpp-version",
        ),
    ],
    ids=["signed-firmware", "security-log", "long-id-tag", "token-type"],
)
def test_what_1_6_has_no_place_for(build: object, status: int, kind: str) -> None:
    assert callable(build)
    with pytest.raises(ProblemError) as raised:
        build()
    problem(status, kind, raised)


def test_a_2_0_1_firmware_update_carries_its_request_id_and_dates() -> None:
    update = FirmwareUpdateCreate(
        location="https://fw.example/a.bin",
        install_at=datetime(2026, 12, 2, tzinfo=UTC),
        timeout_s=600,
    )

    call = update.call(V201, 77, T0)

    assert call.payload == {
        "requestId": 77,
        "firmware": {
            "location": "https://fw.example/a.bin",
            "retrieveDateTime": "2026-12-01T08:00:00Z",
            "installDateTime": "2026-12-02T00:00:00Z",
        },
    }
    assert update.deadline(update.start(T0)) == datetime(2026, 12, 2, 0, 10, tzinfo=UTC)


# -- Hand-offs ---------------------------------------------------------------------


def envelope(event: object, version: OcppVersion = V201) -> EventEnvelope:
    return EventEnvelope.model_validate(
        {
            "message_id": "m-1",
            "charger_id": "CP-1",
            "ocpp_version": version,
            "gateway_id": "gw",
            "received_at": T0,
            "event": event,
        }
    )


@pytest.mark.parametrize(
    ("action", "payload", "workflow_id", "status", "request_id"),
    [
        (
            "FirmwareStatusNotification",
            {"status": "Installed"},
            "firmware-CP-1",
            "Installed",
            None,
        ),
        (
            "FirmwareStatusNotification",
            {"status": "Downloading", "requestId": 9},
            "firmware-CP-1",
            "Downloading",
            9,
        ),
        (
            "DiagnosticsStatusNotification",
            {"status": "Uploaded"},
            "log-CP-1",
            "Uploaded",
            None,
        ),
        (
            "LogStatusNotification",
            {"status": "UploadFailure", "requestId": 4},
            "log-CP-1",
            "UploadFailure",
            4,
        ),
        (
            "ReservationStatusUpdate",
            {"reservationId": 5, "reservationUpdateStatus": "Expired"},
            "reservation-CP-1-5",
            "Expired",
            None,
        ),
    ],
)
def test_notifications_go_to_the_workflow_that_follows_them(
    action: str,
    payload: dict[str, object],
    workflow_id: str,
    status: str,
    request_id: int | None,
) -> None:
    batch = Batch()
    batch.add(envelope(OcppMessage(action=action, payload=payload)))

    assert batch.handoffs == [
        Handoff(
            workflow_id,
            CHARGER_STATUS,
            StatusNotice(action=action, status=status, request_id=request_id, at=T0),
        )
    ]


def test_a_notification_without_its_fields_is_logged_not_handed_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    batch = Batch()
    with caplog.at_level(logging.WARNING, logger="ingress.events"):
        batch.add(
            envelope(
                OcppMessage(
                    action="ReservationStatusUpdate",
                    payload={"reservationUpdateStatus": "Expired"},
                )
            )
        )
        batch.add(envelope(OcppMessage(action="BootNotification", payload={})))

    assert batch.handoffs == []
    [record] = caplog.records
    assert record.message.startswith("ReservationStatusUpdate not handed over")


def test_a_start_on_a_reservation_uses_it() -> None:
    start = TransactionStarted(
        connector_id=1,
        id_token="TAG",
        meter_start_wh=Decimal(0),
        timestamp=T0,
        reservation_id=12,
    )

    [handoff] = reservation_used(
        envelope(start), StartDecision(transaction_id="88", id_token_info=None)
    )
    assert (handoff.workflow_id, handoff.signal) == ("reservation-CP-1-12", USED)
    assert handoff.arg.model_dump() == {
        "transaction_id": "88",
        "id_token": "TAG",
        "connector_id": 1,
        "at": T0,
    }
    assert reservation_used(envelope(start), StopDecision()) == []
    plain = start.model_copy(update={"reservation_id": None})
    assert (
        reservation_used(
            envelope(plain), StartDecision(transaction_id="1", id_token_info=None)
        )
        == []
    )
