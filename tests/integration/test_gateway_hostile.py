"""The SPR gateway under hostile chargers: floods, garbage, slowloris, fuzz.

The set-up of ``test_gateway``: each test runs its own gateway under a bus
prefix of its own with the SG stand-in over real RabbitMQ; the chargers are
raw WebSockets and raw TCP sockets, or the ``ocpp`` library's ChargePoint
where a well-behaved charger is the point.
"""

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from ocpp.messages import CallResult, validate_payload
from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from bus.contract import ChargerDisconnected, EventEnvelope, OcppVersion
from moovolt.settings import Settings
from spr_gateway.app import HANDSHAKE_MARGIN_S
from tests.integration.gateway_support import (
    CALLERROR_CODES,
    OCPP16,
    OCPP201,
    QUIET_S,
    WAIT_S,
    Gateways,
    Inbox,
    StandInSG,
    charger,
    events,
    gateway,
    gateways,
    raw_socket,
    recv,
    results,
    sg,
    topology,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

__all__ = ["events", "gateway", "gateways", "results", "sg", "topology"]  # fixtures

SUBPROTOCOLS = {"ocpp1.6": OCPP16, "ocpp2.0.1": OCPP201}
VERSIONS = {"ocpp1.6": OcppVersion.V16, "ocpp2.0.1": OcppVersion.V201}
RATE_LIMITED_TEXT = "Rate limit exceeded, retry later"
RATE_LIMITED = f'"GenericError","{RATE_LIMITED_TEXT}",{{}}]'


def gateway_records(
    caplog: pytest.LogCaptureFixture, level: int = logging.INFO
) -> list[logging.LogRecord]:
    """Return what the gateway's own modules logged at ``level`` or above."""
    return [
        record
        for record in caplog.records
        if record.name.startswith("spr_gateway") and record.levelno >= level
    ]


async def logged(
    caplog: pytest.LogCaptureFixture, wanted: Callable[[logging.LogRecord], bool]
) -> logging.LogRecord:
    """Wait for a gateway record that ``wanted`` accepts, and return it."""
    async with asyncio.timeout(WAIT_S):
        while True:
            for record in gateway_records(caplog, logging.DEBUG):
                if wanted(record):
                    return record
            await asyncio.sleep(0.01)


async def answers_until(ws: ClientConnection, unique_id: str) -> list[list[Any]]:
    """Read frames up to and including the answer to ``unique_id``."""
    frames: list[list[Any]] = []
    while not frames or frames[-1][1] != unique_id:
        frames.append(json.loads(await recv(ws)))
    return frames


async def nothing_more(ws: ClientConnection) -> None:
    """Assert that no frame comes within ``QUIET_S``."""
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(QUIET_S):
            await ws.recv()


# -- floods ------------------------------------------------------------------------


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_a_flood_is_refused_at_once_beyond_its_burst_and_logged_once(
    gateways: Gateways,
    sg: StandInSG,
    caplog: pytest.LogCaptureFixture,
    subprotocol: str,
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(
        gateway_rate_per_s=2.0, gateway_rate_burst=10, gateway_flood_close_s=60.0
    )
    authorize = {
        "ocpp1.6": {"idTag": "TAG-1"},
        "ocpp2.0.1": {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}},
    }[subprotocol]
    ids = [f"f-{n}" for n in range(40)]

    async with raw_socket(settings, "CP-1", SUBPROTOCOLS[subprotocol]) as ws:
        await sg.next_request("connecting")
        caplog.clear()
        for unique_id in ids:
            await ws.send(json.dumps([2, unique_id, "Authorize", authorize]))
        # Heartbeats count too.
        await ws.send('[2,"hb-1","Heartbeat",{}]')
        answers: dict[str, list[Any]] = {}
        for _ in range(len(ids) + 1):
            answer = json.loads(await recv(ws))
            answers[answer[1]] = answer
        await nothing_more(ws)

    admitted = [unique_id for unique_id in ids if answers[unique_id][0] == 3]
    # The 9 tokens the ready heartbeat left, then one call that waits for the
    # next token; one or two more only if reading stalled for a second.
    assert admitted == ids[: len(admitted)]
    assert 10 <= len(admitted) <= 12
    for unique_id in ids[len(admitted) :]:
        assert json.dumps(answers[unique_id], separators=(",", ":")) == (
            f'[4,"{unique_id}",{RATE_LIMITED}'
        )
    assert answers["hb-1"] == [4, "hb-1", "GenericError", RATE_LIMITED_TEXT, {}]
    asked = [sg.requests.get_nowait() for _ in range(sg.requests.qsize())]
    assert [envelope.message_id for envelope in asked] == admitted
    flood = gateway_records(caplog)
    assert [(record.levelname, record.getMessage()) for record in flood] == [
        ("WARNING", "over 2 frames/s (burst 10): refusing until it slows down")
    ]
    assert getattr(flood[0], "charger_id", None) == "CP-1"


async def test_a_charger_that_waits_for_its_answers_is_slowed_not_refused(
    gateways: Gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(gateway_rate_per_s=40.0, gateway_rate_burst=5)

    async with charger(settings, "CP-1") as cp:  # one heartbeat spent already
        caplog.clear()
        started = time.monotonic()
        for _ in range(30):
            await cp.call(call.Heartbeat(), suppress=False)
        elapsed = time.monotonic() - started

    # 4 tokens left in the bucket, 26 heartbeats at 40 per second.
    assert elapsed >= 26 / 40 - 0.05
    assert gateway_records(caplog, logging.WARNING) == []


async def test_a_flood_that_goes_on_is_closed_with_1008(
    gateways: Gateways, events: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(
        gateway_rate_per_s=5.0, gateway_rate_burst=5, gateway_flood_close_s=0.5
    )

    async def flood(ws: ClientConnection) -> None:
        for n in range(10_000):
            await ws.send(f'[2,"f-{n}","Heartbeat",{{}}]')
            await asyncio.sleep(0.005)

    async with raw_socket(settings, "CP-1") as ws:
        caplog.clear()
        started = time.monotonic()
        flooding = asyncio.create_task(flood(ws))
        with pytest.raises(ConnectionClosed):  # not OK: 1008 is a failure
            async with asyncio.timeout(WAIT_S):
                async for _ in ws:  # a charger reads its answers, and the close
                    pass
        elapsed = time.monotonic() - started
        with pytest.raises(ConnectionClosed):
            await flooding

    assert ws.close_code == 1008
    assert ws.close_reason == RATE_LIMITED_TEXT
    assert elapsed >= 0.5
    gone = await events.next_event("disconnected")
    assert gone.event == ChargerDisconnected(close_code=1008)
    await logged(caplog, lambda record: "disconnected" in record.getMessage())
    warnings = [r.getMessage() for r in gateway_records(caplog, logging.WARNING)]
    assert len(warnings) == 2, warnings
    assert warnings[0] == "over 5 frames/s (burst 5): refusing until it slows down"
    assert warnings[1].startswith("closing after flooding for ")
    assert warnings[1].endswith(" frames refused")
    async with raw_socket(settings, "CP-1"):
        pass  # the charger may come back, with a full bucket


async def test_unreadable_frames_in_a_row_close_with_1002(
    gateways: Gateways, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(gateway_max_unreadable_frames=3)
    unreadable = '[4,"-1","FormationViolation","Message is not valid JSON",{}]'

    async with raw_socket(settings, "CP-1") as ws:
        caplog.clear()
        for _ in range(2):
            await ws.send("not json")
            assert await recv(ws) == unreadable
        await ws.send('[2,"ok","Heartbeat",{}]')  # ends the run
        assert json.loads(await recv(ws))[:2] == [3, "ok"]
        for _ in range(3):
            await ws.send("not json")
            assert await recv(ws) == unreadable
        async with asyncio.timeout(WAIT_S):
            await ws.wait_closed()

    assert ws.close_code == 1002
    assert ws.close_reason == "Too many unreadable frames"
    await logged(caplog, lambda record: "disconnected" in record.getMessage())
    records = gateway_records(caplog)
    assert [(r.levelname, r.getMessage()) for r in records] == [
        *[("INFO", "unreadable frame: Message is not valid JSON")] * 5,
        ("WARNING", "closing after 3 unreadable frames in a row"),
        ("INFO", "charger CP-1 disconnected: 1002"),
    ]


# -- logged once -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("subprotocol", "frame", "answered", "message"),
    [
        ("ocpp1.6", "not json", True, "unreadable frame: Message is not valid JSON"),
        (
            "ocpp2.0.1",
            '[7,"m-1",{}]',
            True,
            "unreadable frame: MessageTypeId is not 2, 3 or 4",
        ),
        (
            "ocpp1.6",
            '[2,"u-1","TeleportVehicle",{}]',
            True,
            "unknown action TeleportVehicle",
        ),
        (
            "ocpp1.6",
            '[2,"b-1","BootNotification",{"chargePointModel":"M"}]',
            True,
            "BootNotification rejected: ProtocolError",
        ),
        (
            "ocpp2.0.1",
            '[2,"n-1","DataTransfer",{"vendorId":"a","data":NaN}]',
            True,
            "DataTransfer rejected: PropertyConstraintViolation",
        ),
        ("ocpp1.6", '[3,"r-1",{}]', False, "answer r-1 matches no call in flight"),
        (
            "ocpp2.0.1",
            "[3,17,{}]",
            False,
            "unreadable answer dropped: "
            "Unique id must be a string of 1 to 36 characters",
        ),
    ],
    ids=["not-json", "type-id", "action", "schema", "nan", "answer", "bad-answer"],
)
async def test_each_bad_frame_is_logged_once_at_info(
    gateway: Settings,
    sg: StandInSG,
    caplog: pytest.LogCaptureFixture,
    subprotocol: str,
    frame: str,
    answered: bool,
    message: str,
) -> None:
    caplog.set_level(logging.INFO)

    async with raw_socket(gateway, "CP-1", SUBPROTOCOLS[subprotocol]) as ws:
        caplog.clear()
        await ws.send(frame)
        await ws.send('[2,"sync","Heartbeat",{}]')
        frames = await answers_until(ws, "sync")

    assert len(frames) == (2 if answered else 1)
    if answered:
        assert frames[0][0] == 4
        assert frames[0][2] in CALLERROR_CODES[VERSIONS[subprotocol]]
    records = gateway_records(caplog)
    assert [(r.levelname, r.getMessage()) for r in records] == [("INFO", message)]
    assert getattr(records[0], "charger_id", None) == "CP-1"
    await sg.next_request("connecting")
    assert sg.requests.empty()  # nothing of it reached the SG


@pytest.mark.parametrize(
    ("frame", "close_code"),
    [
        (json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 2000}]), 1009),
        (b'[2,"bad","Heartbeat",{"x":"\xff"}]', 1007),  # a text frame, not UTF-8
    ],
    ids=["too-big", "not-utf-8"],
)
async def test_a_frame_websockets_refuses_closes_the_socket_and_is_logged_once(
    gateways: Gateways,
    events: Inbox,
    caplog: pytest.LogCaptureFixture,
    frame: str | bytes,
    close_code: int,
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(max_frame_bytes=1024)

    async with raw_socket(settings, "CP-1") as ws:
        caplog.clear()
        await ws.send(frame, text=True)
        async with asyncio.timeout(WAIT_S):
            await ws.wait_closed()

    assert ws.close_code == close_code
    await events.next_event("disconnected")
    await logged(caplog, lambda record: "disconnected" in record.getMessage())
    records = gateway_records(caplog)
    assert len(records) == 1
    assert records[0].levelname == "INFO"
    assert records[0].getMessage().startswith("charger CP-1 disconnected: ")


async def test_a_disconnection_tells_the_close_code_the_gateway_sent(
    gateways: Gateways, events: Inbox
) -> None:
    settings = await gateways.start(max_frame_bytes=1024)

    async with raw_socket(settings, "CP-1") as ws:
        await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 2000}]))
        async with asyncio.timeout(WAIT_S):
            await ws.wait_closed()

    gone = await events.next_event("disconnected")
    assert gone.event == ChargerDisconnected(close_code=1009)


# -- slowloris ---------------------------------------------------------------------


def established(port: int, client_port: int) -> bool:
    """Return whether the gateway still holds the TCP connection of a client."""
    wanted = f"0100007F:{port:04X} 0100007F:{client_port:04X} "
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            # 01 ESTABLISHED, 08 CLOSE_WAIT: the socket is still open here.
            if f"{fields[1]} {fields[2]} " == wanted and fields[3] in ("01", "08"):
                return True
    return False


@pytest.mark.parametrize("trickle", [False, True], ids=["idle", "trickle"])
async def test_a_handshake_that_never_completes_is_dropped_in_bounded_time(
    gateways: Gateways, sg: StandInSG, trickle: bool
) -> None:
    settings = await gateways.start(decision_timeout_s=0.5)
    open_timeout = settings.decision_timeout_s + HANDSHAKE_MARGIN_S
    request = (
        b"GET /ocpp/CP-1 HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", settings.gateway_port)
    client_port = writer.get_extra_info("sockname")[1]
    started = time.monotonic()
    async with asyncio.timeout(WAIT_S):
        while True:  # the gateway holds the socket: the check below can fail
            if established(settings.gateway_port, client_port):
                break
            await asyncio.sleep(0.01)
    sent = 0

    async def send_slowly() -> None:
        # One byte every 50 ms: the whole request would take 9 s.
        nonlocal sent
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.05)

    sending = asyncio.create_task(send_slowly()) if trickle else None
    try:
        async with asyncio.timeout(open_timeout + WAIT_S):
            received = await reader.read()
    except ConnectionResetError:
        received = b""
    elapsed = time.monotonic() - started
    if sending is not None:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        assert 0 < sent < len(request)  # still trickling when it was cut off
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()

    assert received == b""
    assert open_timeout - 0.5 <= elapsed <= open_timeout + 2.0
    assert not established(settings.gateway_port, client_port)
    assert sg.requests.empty()  # never asked: the request never completed
    async with raw_socket(settings, "CP-1"):
        pass  # the gateway serves the next charger


# -- fuzz --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fuzzed:
    """A frame to send and the answer it must get.

    Attributes:
        data: the frame; bytes go as a binary frame.
        answer_id: the unique id of its one answer, "-1" for an answer to an
            unreadable id, ``None`` when it must get none.
        valid: a call the SG may hear of, answered with a CALLRESULT.
        action: the action of a valid call.
    """

    data: str | bytes
    answer_id: str | None
    valid: bool = False
    action: str = ""


VALID_CALLS: dict[str, dict[str, dict[str, Any]]] = {
    "ocpp1.6": {
        "Heartbeat": {},
        "StatusNotification": {
            "connectorId": 1,
            "errorCode": "NoError",
            "status": "Available",
        },
        "Authorize": {"idTag": "TAG-1"},
        "DataTransfer": {"vendorId": "acme", "data": "x"},
        "MeterValues": {
            "connectorId": 1,
            "meterValue": [
                {
                    "timestamp": "2025-03-01T12:00:00Z",
                    "sampledValue": [{"value": "1.5"}],
                }
            ],
        },
    },
    "ocpp2.0.1": {
        "Heartbeat": {},
        "StatusNotification": {
            "timestamp": "2025-03-01T12:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
        "Authorize": {"idToken": {"idToken": "TAG-1", "type": "ISO14443"}},
        "DataTransfer": {"vendorId": "acme", "data": [1, {"a": None}]},
        "MeterValues": {
            "evseId": 1,
            "meterValue": [
                {
                    "timestamp": "2025-03-01T12:00:00Z",
                    "sampledValue": [{"value": 1.5}],
                }
            ],
        },
    },
}


class Fuzzer:
    """Seeded random frames of every kind a broken or hostile charger sends."""

    def __init__(self, seed: int, subprotocol: str) -> None:
        self.rng = random.Random(seed)
        self.valid = VALID_CALLS[subprotocol]
        self.count = 0

    def frames(self, n: int) -> list[Fuzzed]:
        kinds = [
            self.valid_call,
            self.unknown_action,
            self.schema_violation,
            self.garbage_text,
            self.garbage_binary,
            self.not_an_array,
            self.unreadable_id,
            self.short_or_long_call,
            self.action_not_a_string,
            self.unknown_type,
            self.stray_answer,
            self.not_a_number,
            self.too_deep,
        ]
        return [self.rng.choice(kinds)() for _ in range(n)]

    def unique_id(self) -> str:
        self.count += 1
        tail = "".join(
            self.rng.choice("abcXYZ-_:/ é€😀\\\"'")
            for _ in range(self.rng.randint(0, 30))
        )
        return f"{self.count}.{tail}"[:36]

    def json_value(self, depth: int = 0) -> Any:
        choices: list[Callable[[], Any]] = [
            lambda: None,
            lambda: self.rng.choice([True, False]),
            lambda: self.rng.randint(-(10**20), 10**20),
            lambda: self.rng.uniform(-1e9, 1e9),
            lambda: "".join(chr(self.rng.randint(1, 0x2FFF)) for _ in range(5)),
        ]
        if depth < 3:
            choices += [
                lambda: [self.json_value(depth + 1) for _ in range(3)],
                lambda: {
                    self.rng.choice("abcdef"): self.json_value(depth + 1)
                    for _ in range(3)
                },
            ]
        return self.rng.choice(choices)()

    def valid_call(self) -> Fuzzed:
        action = self.rng.choice(sorted(self.valid))
        unique_id = self.unique_id()
        frame = json.dumps([2, unique_id, action, self.valid[action]])
        return Fuzzed(frame, unique_id, valid=True, action=action)

    def unknown_action(self) -> Fuzzed:
        unique_id = self.unique_id()
        action = self.rng.choice(["TeleportVehicle", "", "heartbeat", "../Heartbeat"])
        return Fuzzed(json.dumps([2, unique_id, action, self.json_value()]), unique_id)

    def schema_violation(self) -> Fuzzed:
        action = self.rng.choice(sorted(self.valid))
        payload: Any = dict(self.valid[action])
        # Every key but DataTransfer's data is required and typed.
        keys = sorted(key for key in payload if key != "data")
        mutation = self.rng.choice(["extra", "drop", "retype", "not-object"])
        if mutation == "drop" and keys:
            del payload[self.rng.choice(keys)]
        elif mutation == "retype" and keys:
            key = self.rng.choice(keys)
            payload[key] = {str: 17, int: "17", list: {"a": 1}, dict: [1]}[
                type(payload[key])
            ]
        elif mutation == "not-object":
            payload = self.rng.choice([[], "x", 1, None, [payload]])
        else:
            payload["fuzzExtra"] = self.json_value()
        unique_id = self.unique_id()
        return Fuzzed(json.dumps([2, unique_id, action, payload]), unique_id)

    def garbage_text(self) -> Fuzzed:
        text = "".join(chr(self.rng.randint(1, 0xD7FF)) for _ in range(20))
        return Fuzzed("~" + text, "-1")

    def garbage_binary(self) -> Fuzzed:
        return Fuzzed(b"\xff" + self.rng.randbytes(30), "-1")

    def not_an_array(self) -> Fuzzed:
        value = self.rng.choice([{"a": self.json_value()}, 17, "text", None, True])
        return Fuzzed(json.dumps(value), "-1")

    def unreadable_id(self) -> Fuzzed:
        unique_id = self.rng.choice([17, "", "x" * 37, None, ["a"], {"a": 1}])
        return Fuzzed(json.dumps([2, unique_id, "Heartbeat", {}]), "-1")

    def short_or_long_call(self) -> Fuzzed:
        unique_id = self.unique_id()
        frame = self.rng.choice(
            [
                [2, unique_id],
                [2, unique_id, "Heartbeat"],
                [2, unique_id, "Heartbeat", {}, 1],
            ]
        )
        return Fuzzed(json.dumps(frame), unique_id)

    def action_not_a_string(self) -> Fuzzed:
        unique_id = self.unique_id()
        action = self.rng.choice([17, None, ["Heartbeat"], {"a": 1}])
        return Fuzzed(json.dumps([2, unique_id, action, {}]), unique_id)

    def unknown_type(self) -> Fuzzed:
        unique_id = self.unique_id()
        message_type = self.rng.choice([0, 1, 5, 7, -2, 99, "2", None])
        return Fuzzed(json.dumps([message_type, unique_id, {}]), unique_id)

    def stray_answer(self) -> Fuzzed:
        unique_id = self.unique_id()
        frame = self.rng.choice(
            [
                [3, unique_id, {}],
                [3, unique_id, "not an object"],
                [3, 17, {}],
                [4, unique_id, "GenericError", "", {}],
                [4, unique_id, 17, None, []],
            ]
        )
        return Fuzzed(json.dumps(frame), None)

    def not_a_number(self) -> Fuzzed:
        # Python reads these; 2.0.1's DataTransfer data takes anything.
        unique_id = self.unique_id()
        number = self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999"])
        frame = f'[2,{json.dumps(unique_id)},"DataTransfer",'
        return Fuzzed(frame + f'{{"vendorId":"a","data":[{number}]}}]', unique_id)

    def too_deep(self) -> Fuzzed:
        depth = self.rng.choice([5_000, 20_000])
        return Fuzzed("[" * depth + "]" * depth, "-1")


@pytest.mark.parametrize("subprotocol", ["ocpp1.6", "ocpp2.0.1"])
async def test_fuzzed_frames_each_get_their_one_answer_and_only_valid_calls_relay(
    gateways: Gateways,
    sg: StandInSG,
    events: Inbox,
    caplog: pytest.LogCaptureFixture,
    subprotocol: str,
) -> None:
    caplog.set_level(logging.INFO)
    settings = await gateways.start(
        gateway_rate_per_s=10_000.0,
        gateway_rate_burst=10_000,
        gateway_max_unreadable_frames=10_000,
    )
    version = VERSIONS[subprotocol]
    fuzzed = Fuzzer(seed=20250301, subprotocol=subprotocol).frames(300)
    expected = Counter(f.answer_id for f in fuzzed if f.answer_id is not None)
    valid = {f.answer_id: f.action for f in fuzzed if f.valid and f.answer_id}

    async with raw_socket(settings, "CP-1", SUBPROTOCOLS[subprotocol]) as ws:
        await sg.next_request("connecting")
        await events.next_event("heartbeat")  # of the "ready" heartbeat
        for frame in fuzzed:
            await ws.send(frame.data)
        answers = [json.loads(await recv(ws)) for _ in range(expected.total())]
        await nothing_more(ws)
        await ws.send('[2,"after","Heartbeat",{}]')
        after = json.loads(await recv(ws))

    assert Counter(answer[1] for answer in answers) == expected
    for answer in answers:
        if answer[1] in valid:
            assert answer[0] == 3, answer
            await validate_payload(
                CallResult(answer[1], answer[2], valid[answer[1]]), version.value
            )
        else:
            assert answer[0] == 4, answer
            assert answer[2] in CALLERROR_CODES[version], answer
            assert isinstance(answer[3], str)
            assert answer[4] == {}
    assert after[:2] == [3, "after"]

    decided = {"Authorize", "DataTransfer"}
    asked = [sg.requests.get_nowait() for _ in range(sg.requests.qsize())]
    assert sorted(e.message_id for e in asked) == sorted(
        unique_id for unique_id, action in valid.items() if action in decided
    )
    told = {unique_id for unique_id, action in valid.items() if action not in decided}
    told.add("after")
    seen: list[EventEnvelope] = []
    async with asyncio.timeout(WAIT_S):
        while not told <= {e.message_id for e in seen}:
            seen.append(await events.next(EventEnvelope))
    await asyncio.sleep(QUIET_S)
    seen += events.received(EventEnvelope)
    relayed = [e.message_id for e in seen if e.event.kind != "disconnected"]
    assert sorted(relayed) == sorted(told)
    assert gateway_records(caplog, logging.ERROR) == []


# -- handshakes ----------------------------------------------------------------


async def test_a_request_target_urlsplit_cannot_read_is_refused_quietly(
    gateway: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.gateway_port)
    writer.write(
        b"GET //[/ocpp/CP-1 HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
    )
    async with asyncio.timeout(WAIT_S):
        status_line = await reader.readline()
        await reader.read()
    writer.close()

    assert status_line.split()[1] in (b"400", b"404")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []
