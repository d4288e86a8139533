"""The SPR gateway's CSMS-initiated calls and socket lifetime, end to end.

The same set-up as ``test_gateway``: each test runs its own gateway under a
bus prefix of its own, with a small SG stand-in sending the commands, and the
charger is the ``ocpp`` library's 1.6 ``ChargePoint`` over a real socket or a
raw WebSocket.
"""

import asyncio
import json

import pytest

from bus.amqp import ChargerOffline
from bus.contract import CommandOutcome, CommandResult, OcppCall, RemoteStart
from moovolt.settings import Settings
from tests.integration.gateway_support import (
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


# -- CSMS-initiated calls ----------------------------------------------------------


async def test_a_command_reaches_the_charger_and_its_result_comes_back(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with charger(gateway, "CP-1") as cp:
        sent = await sg.command("CP-1", RemoteStart(connector_id=1, id_token="TAG-1"))

        async with asyncio.timeout(WAIT_S):
            started = await cp.remote_starts.get()
        result = await results.next(CommandResult)

    assert started == {"id_tag": "TAG-1", "connector_id": 1}
    assert result.command_id == sent.command_id
    assert result.task_token == sent.task_token
    assert result.charger_id == "CP-1"
    assert result.outcome is CommandOutcome.ANSWERED
    assert result.status == "Accepted"
    assert result.payload == {"status": "Accepted"}
    assert result.accepted


async def test_commands_to_one_charger_are_sent_one_at_a_time(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        first = await sg.command(
            "CP-1", OcppCall(action="Reset", payload={"type": "Soft"})
        )
        second = await sg.command(
            "CP-1", OcppCall(action="Reset", payload={"type": "Hard"})
        )

        call_1 = json.loads(await recv(ws))
        assert call_1[0] == 2 and call_1[2:] == ["Reset", {"type": "Soft"}]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(QUIET_S):
                await ws.recv()

        await ws.send(json.dumps([3, call_1[1], {"status": "Accepted"}]))
        call_2 = json.loads(await recv(ws))
        assert call_2[2:] == ["Reset", {"type": "Hard"}]
        await ws.send(json.dumps([4, call_2[1], "NotSupported", "no hard reset", {}]))

        result_1 = await results.next(CommandResult)
        result_2 = await results.next(CommandResult)

    assert (result_1.command_id, result_1.outcome, result_1.status) == (
        first.command_id,
        CommandOutcome.ANSWERED,
        "Accepted",
    )
    assert (result_2.command_id, result_2.outcome) == (
        second.command_id,
        CommandOutcome.CALL_ERROR,
    )
    assert result_2.error == "NotSupported: no hard reset"


async def test_an_invalid_command_is_not_sent(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        bad = await sg.command(
            "CP-1", OcppCall(action="Reset", payload={"type": "Off"})
        )
        odd = await sg.command("CP-1", OcppCall(action="Teleport", payload={}))
        good = await sg.command("CP-1", OcppCall(action="ClearCache", payload={}))

        sent = json.loads(await recv(ws))
        assert sent[2] == "ClearCache"
        await ws.send(json.dumps([3, sent[1], {"status": "Accepted"}]))

        outcomes = [await results.next(CommandResult) for _ in range(3)]

    assert [(r.command_id, r.outcome) for r in outcomes] == [
        (bad.command_id, CommandOutcome.CALL_ERROR),
        (odd.command_id, CommandOutcome.NOT_SUPPORTED),
        (good.command_id, CommandOutcome.ANSWERED),
    ]
    assert outcomes[0].error is not None and "Off" in outcomes[0].error


async def test_an_unanswered_command_times_out(
    gateways: Gateways, sg: StandInSG, results: Inbox
) -> None:
    settings = await gateways.start(call_timeout_s=0.3)

    async with raw_socket(settings, "CP-1") as ws:
        sent = await sg.command("CP-1", OcppCall(action="ClearCache", payload={}))
        await recv(ws)

        result = await results.next(CommandResult)

    assert (result.command_id, result.outcome) == (
        sent.command_id,
        CommandOutcome.TIMEOUT,
    )


async def test_a_disconnect_ends_the_command_in_flight_and_the_queued_ones(
    gateway: Settings, sg: StandInSG, results: Inbox, events: Inbox
) -> None:
    async with raw_socket(gateway, "CP-1") as ws:
        in_flight = await sg.command("CP-1", OcppCall(action="ClearCache", payload={}))
        queued = await sg.command("CP-1", OcppCall(action="ClearCache", payload={}))
        await recv(ws)

    first = await results.next(CommandResult)
    second = await results.next(CommandResult)
    gone = await events.next_event("disconnected")

    assert [(r.command_id, r.outcome) for r in (first, second)] == [
        (in_flight.command_id, CommandOutcome.DISCONNECTED),
        (queued.command_id, CommandOutcome.DISCONNECTED),
    ]
    assert gone.charger_id == "CP-1"
    assert gone.event.model_dump() == {"kind": "disconnected", "close_code": 1000}


async def test_a_command_for_a_charger_nobody_holds_is_offline(
    gateway: Settings, sg: StandInSG
) -> None:
    with pytest.raises(ChargerOffline):
        await sg.command("CP-nobody", RemoteStart(connector_id=1, id_token="TAG-1"))


async def test_a_command_after_the_charger_left_is_offline(
    gateway: Settings, sg: StandInSG, events: Inbox
) -> None:
    async with raw_socket(gateway, "CP-1"):
        pass
    await events.next_event("disconnected")  # published after the unbind

    with pytest.raises(ChargerOffline):
        await sg.command("CP-1", RemoteStart(connector_id=1, id_token="TAG-1"))


# -- socket lifetime -------------------------------------------------------------


async def test_an_oversized_frame_closes_with_1009(
    gateways: Gateways,
) -> None:
    settings = await gateways.start(max_frame_bytes=1024)

    async with raw_socket(settings, "CP-1") as ws:
        await ws.send(json.dumps([2, "big", "DataTransfer", {"vendorId": "x" * 2000}]))
        async with asyncio.timeout(WAIT_S):
            await ws.wait_closed()

    assert ws.close_code == 1009


async def test_the_newest_connection_wins(
    gateway: Settings, sg: StandInSG, results: Inbox
) -> None:
    async with charger(gateway, "CP-1") as older, charger(gateway, "CP-1") as newer:
        async with asyncio.timeout(WAIT_S):
            await older.ws.wait_closed()
        assert older.ws.close_code == 1000

        sent = await sg.command("CP-1", RemoteStart(connector_id=2, id_token="T"))
        async with asyncio.timeout(WAIT_S):
            started = await newer.remote_starts.get()
        result = await results.next(CommandResult)

    assert started == {"id_tag": "T", "connector_id": 2}
    assert older.remote_starts.empty()
    assert (result.command_id, result.outcome) == (
        sent.command_id,
        CommandOutcome.ANSWERED,
    )


async def test_shutdown_closes_sockets_with_1001(
    gateways: Gateways, events: Inbox
) -> None:
    settings = await gateways.start()

    async with raw_socket(settings, "CP-1") as ws:
        gateways.stop(settings)
        async with asyncio.timeout(WAIT_S):
            await ws.wait_closed()

    assert ws.close_code == 1001
    gone = await events.next_event("disconnected")
    assert gone.event.model_dump() == {"kind": "disconnected", "close_code": 1001}
