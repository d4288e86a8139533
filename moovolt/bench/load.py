"""Load for the socket benchmarks: many idle sockets, then calls in a loop.

The same code loads the gateway and its raw ``websockets`` baseline, so the
two figures differ only by the server. Each socket keeps one call in flight
and sends the next as soon as the answer arrives (as OCPP-J asks of a
charger); frames are built with string formatting, not a JSON encoder, to
keep the load generator cheap next to the server it measures.
"""

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

CONNECT_CONCURRENCY = 100
BASE_MS = 1_790_000_000_000  # 2026-09-21: meter timestamps count up from here

Frame = Callable[[int, int], str]


def heartbeat_frame(socket_no: int, n: int) -> str:
    """Return the ``n``-th Heartbeat CALL of a socket."""
    return f'[2,"{n}","Heartbeat",{{}}]'


def meter_frame(socket_no: int, n: int) -> str:
    """Return the ``n``-th 1.6 MeterValues CALL of a socket, a new sample each."""
    seconds, ms = divmod(BASE_MS + n, 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return (
        f'[2,"{n}","MeterValues",{{"connectorId":1,"meterValue":[{{"timestamp":'
        f'"{stamp}.{ms:03d}Z","sampledValue":[{{"value":"{10000 + n}",'
        f'"measurand":"Energy.Active.Import.Register","unit":"Wh",'
        f'"context":"Sample.Periodic"}}]}}]}}]'
    )


@dataclass
class Pumped:
    """What a pump achieved.

    Attributes:
        answers: CALLRESULTs (or echoes) received in the window.
        errors: CALLERRORs received in the window.
        seconds: the window's length.
        sockets_answered: sockets that got at least one answer.
    """

    answers: int
    errors: int
    seconds: float
    sockets_answered: int

    @property
    def per_s(self) -> float:
        return self.answers / self.seconds if self.seconds else 0.0


class Sockets:
    """Idle sockets to one server, one per charge point id.

    Args:
        base_url: the server's URL; the charge point id is appended.
        subprotocol: the subprotocol every socket asks for.
    """

    def __init__(self, base_url: str, subprotocol: str = "ocpp1.6") -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.subprotocol = subprotocol
        self.open: list[ClientConnection] = []
        self.failed = 0

    async def connect(self, charger_ids: list[str]) -> None:
        """Open a socket per id, a bounded number of handshakes at a time."""
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one(charger_id: str) -> None:
            async with gate:
                try:
                    ws = await connect(
                        self.base_url + charger_id,
                        subprotocols=[Subprotocol(self.subprotocol)],
                        compression=None,
                        open_timeout=60,
                        ping_interval=None,
                        close_timeout=2,
                        max_queue=4,
                    )
                except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed):
                    self.failed += 1
                    return
                self.open.append(ws)

        await asyncio.gather(*(one(charger_id) for charger_id in charger_ids))

    async def pump(self, frame: Frame, seconds: float) -> Pumped:
        """Send calls on every socket in a closed loop for ``seconds``."""
        answers = errors = answered = 0
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + seconds

        async def run(socket_no: int, ws: ClientConnection) -> None:
            nonlocal answers, errors, answered
            n = 0
            with contextlib.suppress(ConnectionClosed):
                while loop.time() < deadline:
                    n += 1
                    await ws.send(frame(socket_no, n))
                    answer = await ws.recv()
                    if isinstance(answer, str) and answer.startswith("[4"):
                        errors += 1
                    else:
                        answers += 1
                    if n == 1:
                        answered += 1

        await asyncio.gather(*(run(i, ws) for i, ws in enumerate(self.open)))
        return Pumped(answers, errors, loop.time() - started, answered)

    async def close(self) -> None:
        """Close every socket."""
        sockets, self.open = self.open, []
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY * 5)

        async def one(ws: ClientConnection) -> None:
            async with gate:
                with contextlib.suppress(Exception):
                    await ws.close()

        await asyncio.gather(*(one(ws) for ws in sockets))
