"""The SPR gateway against real RabbitMQ and a real OCPP 1.6 charge point.

Each test runs its own gateway (``run_gateway`` in the test's event loop, on a
free port) under a bus prefix of its own, and a small SG stand-in that
answers decision requests. The charger is the ``ocpp`` library's 1.6
``ChargePoint`` over a real socket, or a raw WebSocket for frames a
well-behaved charge point would never send.
"""

import asyncio
import json
from typing import Any

import pytest
import websockets
from ocpp.exceptions import InternalError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from bus.contract import ChargerConnecting, EventEnvelope
from moovolt.settings import Settings
from spr_gateway.timestamps import parse_datetime
from tests.integration.gateway_support import (
    BOOT_TIME,
    OCPP16,
    SILENT_TOKEN,
    WAIT_S,
    WRONG_PASSWORD,
    Gateways,
    Inbox,
    StandInSG,
    basic,
    charger,
    events,
    gateway,
    gateways,
    raw_socket,
    recv,
    refused_status,
    results,
    sg,
    topology,
    url,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

__all__ = ["events", "gateway", "gateways", "results", "sg", "topology"]  # fixtures


# -- handshake -------------------------------------------------------------------


@pytest.mark.parametrize("offered", [None, ["ocpp2.0"], ["ocpp1.5", "ocpp2.1"]])
async def test_a_handshake_without_a_supported_subprotocol_is_refused(
    gateway: Settings, sg: StandInSG, offered: list[str] | None
) -> None:
    subprotocols = None if offered is None else [Subprotocol(p) for p in offered]

    status = await refused_status(gateway, "CP-1", subprotocols=subprotocols)

    assert status == 400
    assert sg.requests.empty()  # refused before the SG is asked


async def test_an_unknown_charger_is_refused_at_the_handshake(
    gateway: Settings, sg: StandInSG
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(url(gateway, "unknown-7"), subprotocols=OCPP16)

    assert refused.value.response.status_code == 404
    assert refused.value.response.body == b"Not Found\n"
    asked = await sg.next_request("connecting")
    assert asked.charger_id == "unknown-7"
    assert asked.ocpp_version == "1.6"


async def test_a_bad_password_is_refused_with_401(
    gateway: Settings, sg: StandInSG
) -> None:
    headers = basic("CP-1", WRONG_PASSWORD)

    status = await refused_status(
        gateway, "CP-1", subprotocols=OCPP16, additional_headers=headers
    )

    assert status == 401
    asked = await sg.next_request("connecting")
    assert isinstance(asked.event, ChargerConnecting)
    assert asked.event.password == WRONG_PASSWORD
    assert asked.event.remote_address == "127.0.0.1"


async def test_credentials_for_another_charger_are_refused_without_asking(
    gateway: Settings, sg: StandInSG
) -> None:
    headers = basic("CP-2", "secret")

    status = await refused_status(
        gateway, "CP-1", subprotocols=OCPP16, additional_headers=headers
    )

    assert status == 401
    assert sg.requests.empty()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/other/CP-1", 404), ("/ocpp/", 404), ("/ocpp/" + "x" * 49, 400)],
)
async def test_a_bad_path_is_refused(gateway: Settings, path: str, status: int) -> None:
    target = f"ws://127.0.0.1:{gateway.gateway_port}{path}"
    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(target, subprotocols=OCPP16)

    assert refused.value.response.status_code == status


async def test_the_charge_point_id_is_url_decoded(
    gateway: Settings, sg: StandInSG
) -> None:
    async with raw_socket(gateway, "CP%201"):
        asked = await sg.next_request("connecting")

    assert asked.charger_id == "CP 1"


async def test_no_connect_decision_in_time_refuses_with_503(
    gateways: Gateways, sg: StandInSG
) -> None:
    settings = await gateways.start(decision_timeout_s=0.3)
    sg.decide = lambda envelope: None  # type: ignore[method-assign]

    status = await refused_status(settings, "CP-1", subprotocols=OCPP16)

    assert status == 503


async def test_an_admitted_handshake_that_fails_to_upgrade_is_undone(
    gateway: Settings, sg: StandInSG, events: Inbox
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.gateway_port)
    # Admitted by the SG, then refused by websockets: no Upgrade header.
    writer.write(
        b"GET /ocpp/CP-9 HTTP/1.1\r\nHost: gateway\r\n"
        b"Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    async with asyncio.timeout(WAIT_S):
        status_line = await reader.readline()
        await reader.read()  # until the gateway closes
    writer.close()
    await writer.wait_closed()

    assert status_line.split()[1] != b"101"
    assert (await sg.next_request("connecting")).charger_id == "CP-9"
    gone = await events.next_event("disconnected")
    assert gone.charger_id == "CP-9"


# -- charger-initiated calls -------------------------------------------------------


async def test_heartbeat_is_answered_locally(
    gateway: Settings, sg: StandInSG, events: Inbox
) -> None:
    async with charger(gateway, "CP-1") as cp:
        answer = await cp.call(call.Heartbeat())

        seen = await events.next_event("heartbeat")

    assert answer.current_time.endswith("Z")
    assert parse_datetime(answer.current_time).utcoffset() is not None
    assert seen.charger_id == "CP-1"
    assert seen.gateway_id == gateway.gateway_id
    kinds = [sg.requests.get_nowait().event.kind for _ in range(sg.requests.qsize())]
    assert kinds == ["connecting"]


async def test_boot_notification_is_answered_with_the_sg_decision(
    gateway: Settings, sg: StandInSG
) -> None:
    async with charger(gateway, "CP-1") as cp:
        answer = await cp.call(
            call.BootNotification(
                charge_point_vendor="Acme",
                charge_point_model="AC-22",
                charge_point_serial_number="SN-1",
            ),
            unique_id="boot-1",
        )

    assert answer == call_result.BootNotification(
        current_time="2025-03-01T12:00:00.000Z", interval=300, status="Accepted"
    )
    asked = await sg.next_request("boot")
    assert asked.message_id == "boot-1"
    assert asked.charger_id == "CP-1"
    assert asked.gateway_id == gateway.gateway_id
    assert asked.ocpp_version == "1.6"
    assert asked.event.model_dump(exclude_none=True) == {
        "kind": "boot",
        "vendor": "Acme",
        "model": "AC-22",
        "serial_number": "SN-1",
    }


async def test_start_transaction_gets_an_integer_transaction_id(
    gateway: Settings, sg: StandInSG
) -> None:
    async with charger(gateway, "CP-1") as cp:
        answer = await cp.call(
            call.StartTransaction(
                connector_id=1,
                id_tag="TAG-1",
                meter_start=1500,
                timestamp="2025-03-01T12:00:00Z",
            )
        )

    assert answer.transaction_id == 42
    assert answer.id_tag_info == {"status": "Accepted"}


@pytest.mark.parametrize(
    ("payload", "code", "description"),
    [
        (
            {"chargePointModel": "M"},
            "ProtocolError",
            "'chargePointVendor' is a required property",
        ),
        (
            {"chargePointVendor": "V", "chargePointModel": "M", "colour": "red"},
            "FormationViolation",
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            {"chargePointVendor": 7, "chargePointModel": "M"},
            "TypeConstraintViolation",
            "7 is not of type 'string'",
        ),
    ],
)
async def test_a_schema_violation_gets_the_exact_callerror(
    gateway: Settings,
    sg: StandInSG,
    payload: dict[str, Any],
    code: str,
    description: str,
) -> None:
    frame = json.dumps([2, "bad-1", "BootNotification", payload])

    async with raw_socket(gateway, "CP-1") as ws:
        await ws.send(frame)
        answer = await recv(ws)

    assert answer == json.dumps(
        [4, "bad-1", code, description, {}], separators=(",", ":")
    )
    await sg.next_request("connecting")
    assert sg.requests.empty()  # nothing invalid reaches the SG


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ("not json", '[4,"-1","FormationViolation","Message is not valid JSON",{}]'),
        (
            '{"a": 1}',
            '[4,"-1","ProtocolError","Message is not a well-formed OCPP-J array",{}]',
        ),
        (
            '[2,"m-1","Heartbeat"]',
            '[4,"m-1","ProtocolError","Message is not a well-formed OCPP-J array",{}]',
        ),
        (
            '[7,"m-2",{}]',
            '[4,"m-2","ProtocolError","MessageTypeId is not 2, 3 or 4",{}]',
        ),
        (
            '[2,17,"Heartbeat",{}]',
            '[4,"-1","ProtocolError",'
            '"Unique id must be a string of 1 to 36 characters",{}]',
        ),
    ],
)
async def test_an_unreadable_frame_gets_a_callerror_and_the_socket_stays(
    gateway: Settings, frame: str, answer: str
) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        await ws.send(frame)
        assert await recv(ws) == answer

        await ws.send('[2,"after","Heartbeat",{}]')
        assert json.loads(await recv(ws))[:2] == [3, "after"]


async def test_an_unknown_action_is_not_implemented(gateway: Settings) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        await ws.send('[2,"u-1","TeleportVehicle",{}]')
        answer = await recv(ws)

    assert answer == (
        '[4,"u-1","NotImplemented","Requested Action is not known by receiver",{}]'
    )


async def test_no_decision_in_time_is_an_internal_error(
    gateways: Gateways,
) -> None:
    settings = await gateways.start(decision_timeout_s=0.3)

    async with raw_socket(settings, "CP-1") as ws:
        await ws.send(f'[2,"a-1","Authorize",{{"idTag":"{SILENT_TOKEN}"}}]')
        answer = await recv(ws)

    assert answer == '[4,"a-1","InternalError","CSMS did not answer in time",{}]'


async def test_no_decision_in_time_raises_in_the_charge_point(
    gateways: Gateways,
) -> None:
    settings = await gateways.start(decision_timeout_s=0.3)

    async with charger(settings, "CP-1") as cp:
        with pytest.raises(InternalError):
            await cp.call(call.Authorize(id_tag=SILENT_TOKEN), suppress=False)


async def test_status_notification_is_on_the_queue_before_it_is_answered(
    gateway: Settings, sg: StandInSG
) -> None:
    events = await sg.bus.channel.get_queue(sg.bus.topology.events)

    async with charger(gateway, "CP-1") as cp:
        await cp.call(
            call.StatusNotification(
                connector_id=1,
                error_code=ChargePointErrorCode.no_error,
                status=ChargePointStatus.charging,
                timestamp="2025-03-01T12:00:00Z",
            ),
            unique_id="status-1",
        )
        # No waiting: the gateway answered only after the broker's confirm.
        # The connect-time Heartbeat's notice was published before this call.
        stored = []
        for _ in range(2):
            message = await events.get(no_ack=True, fail=False)
            assert message is not None, "answered before the bus had the event"
            stored.append(EventEnvelope.model_validate_json(message.body))

    assert [envelope.event.kind for envelope in stored] == ["heartbeat", "status"]
    envelope = stored[1]
    assert envelope.message_id == "status-1"
    assert envelope.event.model_dump() == {
        "kind": "status",
        "connector_id": 1,
        "evse_connector_id": None,
        "status": "Charging",
        "error_code": "NoError",
        "info": None,
        "vendor_id": None,
        "vendor_error_code": None,
        "timestamp": BOOT_TIME,
    }


async def test_meter_values_reach_the_events_queue(
    gateway: Settings, events: Inbox
) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        await ws.send(
            '[2,"mv-1","MeterValues",{"connectorId":1,"transactionId":42,'
            '"meterValue":[{"timestamp":"2025-03-01T12:00:00Z",'
            '"sampledValue":[{"value":"1500.5"}]}]}]'
        )
        assert await recv(ws) == '[3,"mv-1",{}]'

    envelope = await events.next_event("meter_values")
    assert envelope.event.model_dump(mode="json") == {
        "kind": "meter_values",
        "connector_id": 1,
        "transaction_id": "42",
        "samples": [
            {
                "timestamp": "2025-03-01T12:00:00Z",
                "value": "1500.5",
                "measurand": "Energy.Active.Import.Register",
                "unit": "Wh",
                "phase": "",
                "location": "",
                "context": "",
            }
        ],
    }
