"""One simulated charger's socket: raw OCPP-J calls and their answers.

A charger sends one call at a time and waits for its answer, as OCPP-J
asks; a receive loop matches answers to the call in flight by unique id and
answers the CSMS's own calls with a ``NotSupported`` CALLERROR (a simulated
charger acts on nothing). Every call and answer is counted in the shared
``Report``.
"""

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from moovolt.sim.payloads import Flavour, Payload
from moovolt.sim.report import CLOSED, RESULT, TIMEOUT, Report

logger = logging.getLogger(__name__)

CALL, CALLRESULT, CALLERROR = 2, 3, 4


@dataclass(frozen=True, slots=True)
class Answer:
    """The outcome of one call.

    Attributes:
        outcome: ``result``, a CALLERROR code, ``timeout`` or ``closed``.
        payload: the CALLRESULT's payload ({} otherwise).
    """

    outcome: str
    payload: Payload

    @property
    def ok(self) -> bool:
        return self.outcome == RESULT


def label_of(action: str, payload: Payload) -> str:
    """Return the name a call is counted under: 2.0.1 events by their type."""
    if action == "TransactionEvent":
        return f"{action}/{payload.get('eventType')}"
    return action


class ConnectFailed(Exception):
    """The handshake was refused or the gateway could not be reached."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SimCharger:
    """A charger's connection to the gateway.

    Args:
        base_url: the gateway URL the charge point id is appended to.
        charger_id: the charge point id.
        flavour: the OCPP version it speaks.
        report: where calls and answers are counted.
        call_timeout_s: how long a call waits for its answer.
    """

    def __init__(
        self,
        base_url: str,
        charger_id: str,
        flavour: Flavour,
        report: Report,
        *,
        call_timeout_s: float = 30.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/" + charger_id
        self.charger_id = charger_id
        self.flavour = flavour
        self.report = report
        self.call_timeout_s = call_timeout_s
        self._ws: ClientConnection | None = None
        self._receiving: asyncio.Task[None] | None = None
        self._waiting: dict[str, asyncio.Future[Answer]] = {}
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self, *, open_timeout_s: float = 30.0) -> None:
        """Open the socket with the flavour's subprotocol.

        Raises:
            ConnectFailed: refused (``http <status>``) or unreachable.
        """
        try:
            ws = await connect(
                self.url,
                subprotocols=[Subprotocol(self.flavour.subprotocol)],
                compression=None,
                open_timeout=open_timeout_s,
                ping_interval=None,
                max_queue=4,
            )
        except InvalidStatus as exc:
            reason = f"http {exc.response.status_code}"
            self.report.connect_failures[reason] += 1
            raise ConnectFailed(reason) from None
        except (OSError, TimeoutError, ConnectionClosed, InvalidHandshake) as exc:
            reason = type(exc).__name__
            self.report.connect_failures[reason] += 1
            raise ConnectFailed(reason) from None
        self._ws = ws
        self.report.connects += 1
        self._receiving = asyncio.create_task(self._receive(ws))

    async def close(self) -> None:
        """Close the socket (1000) and stop the receive loop."""
        ws, self._ws = self._ws, None
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()
        if self._receiving is not None:
            self._receiving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._receiving
            self._receiving = None

    async def call(self, action: str, payload: Payload) -> Answer:
        """Send one call and wait for its answer; count both.

        Never raises for what the gateway does: a CALLERROR, no answer in
        time or a closed socket come back as the ``Answer``'s outcome.
        """
        async with self._lock:
            return await self._call(action, payload)

    async def _call(self, action: str, payload: Payload) -> Answer:
        ws = self._ws
        label = label_of(action, payload)
        self.report.sent[label] += 1
        if ws is None:
            self.report.record(label, CLOSED, None)
            return Answer(CLOSED, {})
        unique_id = str(next(self._ids))
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = future
        frame = json.dumps([CALL, unique_id, action, payload], separators=(",", ":"))
        started = time.perf_counter()
        try:
            await ws.send(frame)
            async with asyncio.timeout(self.call_timeout_s):
                answer = await future
        except TimeoutError:
            self.report.record(label, TIMEOUT, None)
            return Answer(TIMEOUT, {})
        except ConnectionClosed:
            self.report.record(label, CLOSED, None)
            return Answer(CLOSED, {})
        finally:
            self._waiting.pop(unique_id, None)
        latency = None if answer.outcome == CLOSED else time.perf_counter() - started
        self.report.record(label, answer.outcome, latency)
        return answer

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for raw in ws:
                await self._on_frame(ws, raw)
        except ConnectionClosed:
            pass
        finally:
            for future in self._waiting.values():
                if not future.done():
                    future.set_result(Answer(CLOSED, {}))

    async def _on_frame(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            message: list[Any] = json.loads(raw)
            kind, unique_id = message[0], message[1]
        except (ValueError, TypeError, IndexError, KeyError):
            logger.warning("%s: unreadable frame from the CSMS", self.charger_id)
            return
        if kind == CALL:
            action = str(message[2]) if len(message) > 2 else "?"
            self.report.csms_calls[action] += 1
            await ws.send(
                json.dumps(
                    [CALLERROR, unique_id, "NotSupported", "Simulated charger", {}],
                    separators=(",", ":"),
                )
            )
            return
        future = self._waiting.get(unique_id)
        if future is None or future.done():
            logger.debug("%s: answer %s to no call", self.charger_id, unique_id)
            return
        if kind == CALLRESULT:
            future.set_result(Answer(RESULT, message[2]))
        else:
            future.set_result(Answer(str(message[2]), {}))
