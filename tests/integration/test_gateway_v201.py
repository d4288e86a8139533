"""The SPR gateway against real RabbitMQ and a real OCPP 2.0.1 charging station.

The set-up of ``test_gateway``: each test runs its own gateway under a bus
prefix of its own, with the SG stand-in answering decisions. The charger is
the ``ocpp`` library's 2.0.1 ``ChargePoint`` over a real socket, or a raw
WebSocket for exact frames and for frames a well-behaved station never sends.
"""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import websockets
from ocpp.v201 import call, call_result
from websockets.asyncio.client import ClientConnection
from websockets.typing import Subprotocol

from bus.contract import (
    AuthorizeRequest,
    BootRequest,
    CommandOutcome,
    CommandResult,
    EventEnvelope,
    MeterReadings,
    MeterSample,
    OcppCall,
    OcppMessage,
    RemoteStart,
    RemoteStop,
    ReportedVariable,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    VariablesReported,
)
from moovolt.settings import Settings
from tests.integration.gateway_support import (
    BOOT_TIME,
    OCPP201,
    Inbox,
    StandInSG,
    charger201,
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

T_BEGIN = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
T_UPDATE = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
T_END = datetime(2025, 3, 1, 13, 0, tzinfo=UTC)
TOKEN = {"id_token": "04A2B3", "type": "ISO14443"}


def register(value: float, at: str, **fields: Any) -> dict[str, Any]:
    """A MeterValueType (ocpp library spelling) with one energy register."""
    return {"timestamp": at, "sampled_value": [{"value": value, **fields}]}


def wh(value: str, at: datetime, context: str = "Sample.Periodic") -> MeterSample:
    """An imported-energy register in Wh, as the gateway publishes it."""
    return MeterSample(
        timestamp=at,
        value=Decimal(value),
        location="Outlet",
        context=context,
    )


async def frame_exchange(ws: ClientConnection, frame: str) -> str:
    """Send one frame on a raw socket and return the answer."""
    await ws.send(frame)
    return await recv(ws)


# -- negotiation -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("offered", "chosen", "version"),
    [
        (["ocpp1.6", "ocpp2.0.1"], "ocpp2.0.1", "2.0.1"),
        (["ocpp2.0.1", "ocpp1.6"], "ocpp2.0.1", "2.0.1"),
        (["ocpp2.0.1"], "ocpp2.0.1", "2.0.1"),
        (["ocpp1.6"], "ocpp1.6", "1.6"),
        (["ocpp2.1", "ocpp1.6"], "ocpp1.6", "1.6"),
    ],
)
async def test_the_newest_version_both_sides_speak_is_chosen(
    gateway: Settings, sg: StandInSG, offered: list[str], chosen: str, version: str
) -> None:
    subprotocols = [Subprotocol(name) for name in offered]

    async with websockets.connect(
        url(gateway, "CP-1"), subprotocols=subprotocols
    ) as ws:
        answer = await frame_exchange(ws, '[2,"hb-1","Heartbeat",{}]')

    assert ws.subprotocol == chosen
    assert json.loads(answer)[:2] == [3, "hb-1"]
    asked = await sg.next_request("connecting")
    assert asked.ocpp_version == version


@pytest.mark.parametrize(
    "offered", [["ocpp2.0"], ["ocpp2.1"], ["ocpp201", "OCPP2.0.1"]]
)
async def test_no_supported_version_is_refused_with_400(
    gateway: Settings, sg: StandInSG, offered: list[str]
) -> None:
    subprotocols = [Subprotocol(name) for name in offered]

    status = await refused_status(gateway, "CP-1", subprotocols=subprotocols)

    assert status == 400
    assert sg.requests.empty()


# -- charger-initiated calls -------------------------------------------------------


async def test_boot_notification_is_answered_with_the_sg_decision(
    gateway: Settings, sg: StandInSG
) -> None:
    async with charger201(gateway, "CS-1") as cs:
        answer = await cs.call(
            call.BootNotification(
                charging_station={
                    "model": "AC-22",
                    "vendor_name": "Acme",
                    "serial_number": "SN-1",
                    "firmware_version": "2.0.1-a",
                    "modem": {"iccid": "8931", "imsi": "2620"},
                },
                reason="PowerUp",
            ),
            unique_id="boot-1",
        )

    assert answer == call_result.BootNotification(
        current_time="2025-03-01T12:00:00.000Z", interval=300, status="Accepted"
    )
    asked = await sg.next_request("boot")
    assert (asked.message_id, asked.charger_id, asked.ocpp_version) == (
        "boot-1",
        "CS-1",
        "2.0.1",
    )
    assert asked.event == BootRequest(
        vendor="Acme",
        model="AC-22",
        serial_number="SN-1",
        firmware_version="2.0.1-a",
        iccid="8931",
        imsi="2620",
    )


async def test_heartbeat_is_answered_locally(
    gateway: Settings, sg: StandInSG, events: Inbox
) -> None:
    async with charger201(gateway, "CS-1") as cs:
        answer = await cs.call(call.Heartbeat())

        seen = await events.next_event("heartbeat")

    assert answer.current_time.endswith("Z")
    assert (seen.charger_id, seen.ocpp_version) == ("CS-1", "2.0.1")
    kinds = [sg.requests.get_nowait().event.kind for _ in range(sg.requests.qsize())]
    assert kinds == ["connecting"]


async def test_authorize_carries_the_token_type(
    gateway: Settings, sg: StandInSG
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(
            ws,
            '[2,"a-1","Authorize",{"idToken":{"idToken":"04A2B3","type":"ISO14443"}}]',
        )

    assert answer == '[3,"a-1",{"idTokenInfo":{"status":"Accepted"}}]'
    asked = await sg.next_request("authorize")
    assert asked.event == AuthorizeRequest(id_token="04A2B3", id_token_type="ISO14443")


async def test_a_transaction_reaches_the_sg_as_started_updated_ended(
    gateway: Settings, sg: StandInSG
) -> None:
    async with charger201(gateway, "CS-1") as cs:
        started = await cs.call(
            call.TransactionEvent(
                event_type="Started",
                timestamp="2025-03-01T12:00:00Z",
                trigger_reason="Authorized",
                seq_no=0,
                transaction_info={"transaction_id": "tx-1", "remote_start_id": 99},
                evse={"id": 1, "connector_id": 1},
                id_token=TOKEN,
                meter_value=[
                    register(1234, "2025-03-01T12:00:00Z", context="Transaction.Begin")
                ],
            ),
            unique_id="te-1",
        )
        updated = await cs.call(
            call.TransactionEvent(
                event_type="Updated",
                timestamp="2025-03-01T12:30:00Z",
                trigger_reason="MeterValuePeriodic",
                seq_no=1,
                transaction_info={
                    "transaction_id": "tx-1",
                    "charging_state": "Charging",
                },
                meter_value=[
                    register(
                        2.5, "2025-03-01T12:30:00Z", unit_of_measure={"unit": "kWh"}
                    )
                ],
            )
        )
        ended = await cs.call(
            call.TransactionEvent(
                event_type="Ended",
                timestamp="2025-03-01T13:00:00Z",
                trigger_reason="StopAuthorized",
                seq_no=2,
                transaction_info={"transaction_id": "tx-1", "stopped_reason": "Local"},
                evse={"id": 1, "connector_id": 1},
                id_token=TOKEN,
                meter_value=[
                    register(9000, "2025-03-01T13:00:00Z", context="Transaction.End")
                ],
            )
        )

    assert started == call_result.TransactionEvent(id_token_info={"status": "Accepted"})
    assert updated == call_result.TransactionEvent()  # no running cost on the wire
    assert ended == call_result.TransactionEvent(
        total_cost=12.35, id_token_info={"status": "Accepted"}
    )
    start = await sg.next_request("transaction_started")
    assert (start.message_id, start.ocpp_version) == ("te-1", "2.0.1")
    assert start.event == TransactionStarted(
        transaction_id="tx-1",
        connector_id=1,
        evse_connector_id=1,
        id_token="04A2B3",
        id_token_type="ISO14443",
        meter_start_wh=Decimal(1234),
        timestamp=T_BEGIN,
        remote_start_id=99,
        seq_no=0,
        trigger_reason="Authorized",
        samples=(wh("1234", T_BEGIN, "Transaction.Begin"),),
    )
    update = await sg.next_request("transaction_updated")
    assert update.event == TransactionUpdated(
        transaction_id="tx-1",
        timestamp=T_UPDATE,
        charging_state="Charging",
        seq_no=1,
        trigger_reason="MeterValuePeriodic",
        samples=(
            MeterSample(
                timestamp=T_UPDATE,
                value=Decimal("2.5"),
                unit="kWh",
                location="Outlet",
                context="Sample.Periodic",
            ),
        ),
    )
    end = await sg.next_request("transaction_ended")
    assert end.event == TransactionEnded(
        transaction_id="tx-1",
        meter_stop_wh=Decimal(9000),
        timestamp=T_END,
        id_token="04A2B3",
        id_token_type="ISO14443",
        reason="Local",
        connector_id=1,
        evse_connector_id=1,
        seq_no=2,
        trigger_reason="StopAuthorized",
        samples=(wh("9000", T_END, "Transaction.End"),),
    )


async def test_transaction_event_answers_on_the_wire(
    gateway: Settings, sg: StandInSG
) -> None:
    head = (
        '"timestamp":"2025-03-01T12:00:00Z","transactionInfo":{"transactionId":"tx-9"}'
    )

    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        started = await frame_exchange(
            ws,
            '[2,"te-1","TransactionEvent",{"eventType":"Started",'
            f'"triggerReason":"CablePluggedIn","seqNo":0,{head}}}]',
        )
        ended = await frame_exchange(
            ws,
            '[2,"te-2","TransactionEvent",{"eventType":"Ended",'
            f'"triggerReason":"EVDeparted","seqNo":1,{head}}}]',
        )

    # No id token to judge: nothing but the cost, rounded to the cent.
    assert started == '[3,"te-1",{}]'
    assert ended == '[3,"te-2",{"totalCost":12.35}]'
    start = await sg.next_request("transaction_started")
    assert isinstance(start.event, TransactionStarted)
    assert (start.event.connector_id, start.event.id_token) == (0, None)


@pytest.mark.parametrize(
    ("payload", "code", "description"),
    [
        (
            {"reason": "PowerUp"},
            "ProtocolError",
            "'chargingStation' is a required property",
        ),
        (
            {
                "reason": "PowerUp",
                "chargingStation": {"model": "M", "vendorName": "V"},
                "colour": "red",
            },
            "FormatViolation",
            "Additional properties are not allowed ('colour' was unexpected)",
        ),
        (
            {"reason": "PowerUp", "chargingStation": {"model": 7, "vendorName": "V"}},
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

    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(ws, frame)

    assert answer == json.dumps(
        [4, "bad-1", code, description, {}], separators=(",", ":")
    )
    await sg.next_request("connecting")
    assert sg.requests.empty()  # nothing invalid reaches the SG


@pytest.mark.parametrize(
    ("frame", "answer"),
    [
        ("not json", '[4,"-1","RpcFrameworkError","Message is not valid JSON",{}]'),
        (
            '{"a": 1}',
            '[4,"-1","RpcFrameworkError",'
            '"Message is not a well-formed OCPP-J array",{}]',
        ),
        (
            '[2,"m-1","Heartbeat"]',
            '[4,"m-1","RpcFrameworkError",'
            '"Message is not a well-formed OCPP-J array",{}]',
        ),
        (
            '[7,"m-2",{}]',
            '[4,"m-2","MessageTypeNotSupported","MessageTypeId is not 2, 3 or 4",{}]',
        ),
        (
            '[2,17,"Heartbeat",{}]',
            '[4,"-1","RpcFrameworkError",'
            '"Unique id must be a string of 1 to 36 characters",{}]',
        ),
    ],
)
async def test_an_unreadable_frame_gets_a_2_0_1_callerror_and_the_socket_stays(
    gateway: Settings, frame: str, answer: str
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        assert await frame_exchange(ws, frame) == answer

        after = await frame_exchange(ws, '[2,"after","Heartbeat",{}]')
        assert json.loads(after)[:2] == [3, "after"]


@pytest.mark.parametrize("action", ["TeleportVehicle", "StartTransaction"])
async def test_an_action_unknown_to_2_0_1_is_not_implemented(
    gateway: Settings, sg: StandInSG, action: str
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(ws, f'[2,"u-1","{action}",{{}}]')

    assert answer == (
        '[4,"u-1","NotImplemented","Requested Action is not known by receiver",{}]'
    )
    await sg.next_request("connecting")
    assert sg.requests.empty()


async def test_a_request_the_sg_does_not_implement_is_not_implemented(
    gateway: Settings, sg: StandInSG
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(
            ws, '[2,"s-1","SignCertificate",{"csr":"-----BEGIN CSR-----"}]'
        )

    assert answer == (
        '[4,"s-1","NotImplemented","Requested Action is not known by receiver",{}]'
    )
    asked = await sg.next_request("ocpp")
    assert asked.event == OcppMessage(
        action="SignCertificate", payload={"csr": "-----BEGIN CSR-----"}
    )


async def test_data_transfer_is_answered_by_the_sg(gateway: Settings) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(
            ws, '[2,"d-1","DataTransfer",{"vendorId":"acme","data":[1,2]}]'
        )

    assert answer == '[3,"d-1",{"status":"Accepted"}]'


async def test_a_notification_is_on_the_queue_before_it_is_answered(
    gateway: Settings, sg: StandInSG
) -> None:
    queue = await sg.bus.channel.get_queue(sg.bus.topology.events)
    payload = {"type": "FirmwareUpdated", "timestamp": "2025-03-01T12:00:00Z"}

    async with charger201(gateway, "CS-1") as cs:
        answer = await cs.call(
            call.SecurityEventNotification(**payload), unique_id="sec-1"
        )
        # No waiting: the gateway answered only after the broker's confirm.
        # The connect-time Heartbeat's notice was published before this call.
        stored = []
        for _ in range(2):
            message = await queue.get(no_ack=True, fail=False)
            assert message is not None, "answered before the bus had the event"
            stored.append(EventEnvelope.model_validate_json(message.body))

    assert answer == call_result.SecurityEventNotification()
    assert [envelope.event.kind for envelope in stored] == ["heartbeat", "ocpp"]
    assert stored[1].message_id == "sec-1"
    assert stored[1].event == OcppMessage(
        action="SecurityEventNotification", payload=payload
    )


async def test_status_meter_values_and_reports_reach_the_events_queue(
    gateway: Settings, events: Inbox
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        status = await frame_exchange(
            ws,
            '[2,"st-1","StatusNotification",{"timestamp":"2025-03-01T12:00:00Z",'
            '"connectorStatus":"Occupied","evseId":2,"connectorId":1}]',
        )
        meter = await frame_exchange(
            ws,
            '[2,"mv-1","MeterValues",{"evseId":2,"meterValue":[{"timestamp":'
            '"2025-03-01T12:00:00Z","sampledValue":[{"value":1.5,'
            '"unitOfMeasure":{"unit":"kWh","multiplier":1}}]}]}]',
        )
        report = await frame_exchange(
            ws,
            '[2,"nr-1","NotifyReport",{"requestId":7,"generatedAt":'
            '"2025-03-01T12:00:00Z","seqNo":0,"reportData":[{"component":'
            '{"name":"OCPPCommCtrlr"},"variable":{"name":"HeartbeatInterval"},'
            '"variableAttribute":[{"value":"300","mutability":"ReadWrite"}],'
            '"variableCharacteristics":{"unit":"s","dataType":"integer",'
            '"supportsMonitoring":false}}]}]',
        )

    assert (status, meter, report) == (
        '[3,"st-1",{}]',
        '[3,"mv-1",{}]',
        '[3,"nr-1",{}]',
    )
    changed = await events.next_event("status")
    assert changed.event == StatusChanged(
        connector_id=2, evse_connector_id=1, status="Occupied", timestamp=BOOT_TIME
    )
    readings = await events.next_event("meter_values")
    assert readings.event == MeterReadings(
        connector_id=2,
        samples=(
            MeterSample(
                timestamp=BOOT_TIME,
                value=Decimal("15.0"),
                unit="kWh",
                location="Outlet",
                context="Sample.Periodic",
            ),
        ),
    )
    reported = await events.next_event("variables_reported")
    assert reported.event == VariablesReported(
        request_id=7,
        seq_no=0,
        generated_at=BOOT_TIME,
        variables=(
            ReportedVariable(
                component="OCPPCommCtrlr",
                variable="HeartbeatInterval",
                value="300",
                mutability="ReadWrite",
                data_type="integer",
                unit="s",
            ),
        ),
    )


async def test_a_sampled_value_that_is_not_a_number_is_refused(
    gateway: Settings, sg: StandInSG
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        answer = await frame_exchange(
            ws,
            '[2,"mv-1","MeterValues",{"evseId":1,"meterValue":[{"timestamp":'
            '"2025-03-01T12:00:00Z","sampledValue":[{"value":NaN}]}]}]',
        )

    assert answer == (
        '[4,"mv-1","PropertyConstraintViolation","sampled value is not a number",{}]'
    )


# -- CSMS-initiated calls ----------------------------------------------------------


async def test_remote_start_and_stop_reach_the_station_and_come_back(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with charger201(gateway, "CS-1") as cs:
        start = await sg.command(
            "CS-1", RemoteStart(connector_id=1, id_token="TAG-1", remote_start_id=99)
        )
        requested_start = await cs.next_call()
        started = await results.next(CommandResult)

        stop = await sg.command("CS-1", RemoteStop(transaction_id="tx-remote"))
        requested_stop = await cs.next_call()
        stopped = await results.next(CommandResult)

    assert requested_start == (
        "RequestStartTransaction",
        {
            "evse_id": 1,
            "remote_start_id": 99,
            "id_token": {"id_token": "TAG-1", "type": "Central"},
        },
    )
    assert (started.command_id, started.task_token) == (
        start.command_id,
        start.task_token,
    )
    assert started.outcome is CommandOutcome.ANSWERED
    assert started.payload == {"status": "Accepted", "transactionId": "tx-remote"}
    assert started.accepted
    assert requested_stop == ("RequestStopTransaction", {"transaction_id": "tx-remote"})
    assert stopped.command_id == stop.command_id
    assert (stopped.outcome, stopped.status) == (CommandOutcome.ANSWERED, "Accepted")


async def test_get_variables_reaches_the_station_and_comes_back(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    asked = [
        {
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "HeartbeatInterval"},
        }
    ]

    async with charger201(gateway, "CS-1") as cs:
        sent = await sg.command(
            "CS-1", OcppCall(action="GetVariables", payload={"getVariableData": asked})
        )
        requested = await cs.next_call()
        result = await results.next(CommandResult)

    assert requested == ("GetVariables", {"get_variable_data": asked})
    assert (result.command_id, result.outcome) == (
        sent.command_id,
        CommandOutcome.ANSWERED,
    )
    # A GetVariables answer has no overall status; the results carry their own.
    assert result.status is None
    assert result.payload == {
        "getVariableResult": [
            {
                "attributeStatus": "Accepted",
                "attributeValue": "300",
                "component": {"name": "OCPPCommCtrlr"},
                "variable": {"name": "HeartbeatInterval"},
            }
        ]
    }


async def test_commands_2_0_1_cannot_express_are_not_sent(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with raw_socket(gateway, "CS-1", OCPP201) as ws:
        no_id = await sg.command("CS-1", RemoteStart(connector_id=1, id_token="T"))
        old = await sg.command(
            "CS-1",
            OcppCall(action="RemoteStartTransaction", payload={"idTag": "T"}),
        )
        good = await sg.command(
            "CS-1", RemoteStart(connector_id=None, id_token="T", remote_start_id=5)
        )

        sent = json.loads(await recv(ws))
        assert sent[0] == 2 and sent[2:] == [
            "RequestStartTransaction",
            {"remoteStartId": 5, "idToken": {"idToken": "T", "type": "Central"}},
        ]
        await ws.send(json.dumps([3, sent[1], {"status": "Rejected"}]))

        outcomes = [await results.next(CommandResult) for _ in range(3)]

    assert [(r.command_id, r.outcome) for r in outcomes] == [
        (no_id.command_id, CommandOutcome.CALL_ERROR),
        (old.command_id, CommandOutcome.NOT_SUPPORTED),
        (good.command_id, CommandOutcome.ANSWERED),
    ]
    assert outcomes[0].error == "RequestStartTransaction needs a remote start id"
    assert outcomes[2].status == "Rejected"
    assert not outcomes[2].accepted


async def test_a_charger_offering_both_gets_2_0_1_commands(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    both = [Subprotocol("ocpp1.6"), Subprotocol("ocpp2.0.1")]

    async with raw_socket(gateway, "CS-1", both) as ws:
        await sg.command("CS-1", RemoteStop(transaction_id="tx-7"))
        sent = json.loads(await recv(ws))
        await ws.send(json.dumps([3, sent[1], {"status": "Accepted"}]))
        result = await results.next(CommandResult)

    assert ws.subprotocol == "ocpp2.0.1"
    assert sent[2:] == ["RequestStopTransaction", {"transactionId": "tx-7"}]
    assert (result.charger_id, result.accepted) == ("CS-1", True)
