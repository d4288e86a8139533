"""Chargers that keep charging through faults, as real ones do.

Each ``FaultCharger`` runs charge sessions back to back (authorize, start, an
energy register every ``SAMPLE_INTERVAL_S``, stop) whatever happens to the
CSMS. Its transaction messages wait in an outbox and go out in order, one
call in flight at a time: a call whose socket closed or that timed out is
sent again unchanged with the same message id, one answered with a CALLERROR
again after a pause with a new id, until the CSMS answers it. A dropped socket
is reopened with backoff, on another gateway when its own refuses. A token
the CSMS cannot judge right now is taken from the authorization cache, so
sessions go on while the CSMS is away. Every charger keeps a ``Ledger``.
"""

import asyncio
import collections
import contextlib
import logging
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.exceptions import OCPPError
from websockets.exceptions import ConnectionClosed, WebSocketException

from tests.faults.dialects import DIALECTS, Outgoing, new_id
from tests.faults.ledger import BEGIN, END, PERIODIC, Ledger, Sample, Transaction

logger = logging.getLogger(__name__)

SAMPLE_INTERVAL_S = 0.3
SAMPLES_PER_SESSION = 15
# A held session goes on until stopped remotely, or this many samples.
HELD_SAMPLES_MAX = 300
PAUSE_BETWEEN_SESSIONS_S = 0.5
# Longer than the gateway's decision timeout (10 s in the test stack), so
# the gateway's InternalError comes first when the SG does not answer.
CALL_TIMEOUT_S = 15.0
RETRY_AFTER_ERROR_S = 1.0
AUTHORIZE_TIMEOUT_S = 5.0
RECONNECT_MIN_S = 0.2
RECONNECT_MAX_S = 2.0
TOKENS = ("TAG-OK", "TAG-OK-2")


@dataclass(frozen=True)
class Link:
    """One open socket: its station, the gateway, and a future set on loss."""

    station: Any
    gateway: str
    lost: asyncio.Future[None]


class FaultCharger:
    """One charger of the fleet.

    Args:
        charger_id: its charge point id, registered beforehand.
        version: "1.6" or "2.0.1".
        urls: the gateways' URLs for this charger, by gateway name.
        home: the gateway it connects to first.
    """

    def __init__(
        self, charger_id: str, version: str, urls: dict[str, str], home: str
    ) -> None:
        self.charger_id = charger_id
        self.dialect = DIALECTS[version]()
        self.urls = urls
        self.order = [home, *(name for name in urls if name != home)]
        self.ledger = Ledger(charger_id, version)
        self.meter_wh = 100_000
        self.finishing = asyncio.Event()
        self.started_once = asyncio.Event()  # the CSMS answered a start
        # While set, the running session waits for a remote stop.
        self.hold = False
        self._answered = asyncio.Condition()
        self.last_answer_at: datetime | None = None
        self.authorized: set[str] = set()  # the authorization cache
        self._rng = random.Random(charger_id)
        self._outbox: collections.deque[Outgoing] = collections.deque()
        self._in_flight: Outgoing | None = None
        self._queued = asyncio.Event()
        self._emptied = asyncio.Event()
        self._emptied.set()
        self._link: Link | None = None
        self._online = asyncio.Event()
        self._link_changed = asyncio.Condition()
        self._current: Transaction | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._driving: asyncio.Task[None] | None = None

    # -- Lifetime --------------------------------------------------------------

    def start(self) -> None:
        """Connect, boot and start charging, in the background."""
        self._put(self.dialect.boot())
        self._tasks = [
            asyncio.create_task(self._connect_forever()),
            asyncio.create_task(self._send_forever()),
        ]
        self._driving = asyncio.create_task(self._drive())

    async def drained(self) -> None:
        """Wait until the last session has ended and every call is answered."""
        assert self._driving is not None
        await self._driving
        while self._outbox:
            self._emptied.clear()
            await self._emptied.wait()

    async def close(self) -> None:
        """Stop everything and close the socket."""
        tasks = [*self._tasks, *([self._driving] if self._driving else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._link is not None:
            with contextlib.suppress(Exception):
                await self._link.station._connection.close()

    @property
    def online(self) -> bool:
        return self._online.is_set()

    async def connected_to(self, gateway: str) -> None:
        """Wait until the charger's socket is open on ``gateway``."""
        async with self._link_changed:
            await self._link_changed.wait_for(
                lambda: self.online and self.ledger.gateway == gateway
            )

    @property
    def unanswered(self) -> int:
        return len(self._outbox)

    @property
    def current(self) -> Transaction | None:
        """The transaction running now, if any."""
        return self._current

    # -- Sessions ----------------------------------------------------------------

    async def _drive(self) -> None:
        await self._online.wait()  # powered up and booting, not charging yet
        number = 0
        while not self.finishing.is_set():
            number += 1
            await self._session(number, TOKENS[number % len(TOKENS)])
            await asyncio.sleep(PAUSE_BETWEEN_SESSIONS_S)

    async def _session(self, number: int, id_token: str) -> None:
        await self._authorize(id_token)
        tx = Transaction(
            number=number,
            id_token=id_token,
            connector_id=1,
            started_at=_now(),
            meter_start_wh=self.meter_wh,
        )
        if self.dialect.registers_are_samples:
            tx.transaction_id = f"{self.charger_id}-tx{number}"
            tx.samples.append(Sample(tx.started_at, self.meter_wh, BEGIN))
        self.ledger.transactions.append(tx)
        self._current = tx
        start = self.dialect.start(tx, offline=not self.online)
        book = start.answered

        def answered(result: Any) -> None:
            book(result)
            self.started_once.set()

        start.answered = answered
        self._put(start)

        count = 0
        while count < SAMPLES_PER_SESSION or (self.hold and count < HELD_SAMPLES_MAX):
            count += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tx.stop_requested.wait(), SAMPLE_INTERVAL_S)
            if tx.stop_requested.is_set():
                break
            self.meter_wh += self._rng.randint(20, 400)
            sample = Sample(_now(), self.meter_wh, PERIODIC)
            tx.samples.append(sample)
            self._put(self.dialect.meter(tx, sample, offline=not self.online))

        self.meter_wh += self._rng.randint(1, 50)
        tx.meter_stop_wh = self.meter_wh
        tx.stopped_at = _now()
        tx.stop_reason = "Remote" if tx.stop_requested.is_set() else "Local"
        if self.dialect.registers_are_samples:
            tx.samples.append(Sample(tx.stopped_at, self.meter_wh, END))
        self._current = None
        self._put(self.dialect.stop(tx, offline=not self.online))

    async def _authorize(self, id_token: str) -> None:
        """Ask the CSMS, ahead of the queued calls; if it cannot say, the cache."""
        verdicts: asyncio.Queue[str | None] = asyncio.Queue()
        if self.online:
            call = self.dialect.authorize(id_token, verdicts.put_nowait)
            call.given_up = lambda: verdicts.put_nowait(None)
            self._put(call, first=True)
            try:
                verdict = await asyncio.wait_for(verdicts.get(), AUTHORIZE_TIMEOUT_S)
            except TimeoutError:
                verdict = None
                if call is not self._in_flight and call in self._outbox:
                    self._outbox.remove(call)  # the driver has stopped waiting
            if verdict == "Accepted":
                self.authorized.add(id_token)
                self.ledger.authorized_online += 1
                return
        # Offline, a charger starts on what its cache says (or, for a token
        # it has not seen, as AllowOfflineTxForUnknownId lets it).
        self.ledger.authorized_from_cache += 1

    def remote_stop(self, transaction_id: str) -> bool:
        """Stop the running transaction if it is ``transaction_id``."""
        tx = self._current
        if tx is None or tx.transaction_id != transaction_id:
            return False
        tx.remote_stop_gateway = self.ledger.gateway
        tx.stop_requested.set()
        return True

    # -- The outbox ----------------------------------------------------------------

    def _put(self, call: Outgoing, first: bool = False) -> None:
        """Queue ``call``: last, or ``first`` after the one in flight."""
        if call.transactional:
            self.ledger.sent += 1
        if not first:
            self._outbox.append(call)
        elif self._outbox and self._outbox[0] is self._in_flight:
            self._outbox.insert(1, call)
        else:
            self._outbox.appendleft(call)
        self.ledger.backlog_max = max(self.ledger.backlog_max, len(self._outbox))
        self._queued.set()

    async def _send_forever(self) -> None:
        while True:
            while not self._outbox:
                self._emptied.set()
                self._queued.clear()
                await self._queued.wait()
            await self._online.wait()
            link = self._link
            if link is None:
                continue
            self._in_flight = self._outbox[0]
            try:
                await self._attempt(link, self._in_flight)
            finally:
                self._in_flight = None

    async def _attempt(self, link: Link, call: Outgoing) -> None:
        """Send ``call`` once on ``link``; pop it if answered or given up."""
        self.ledger.attempts += 1
        sending = asyncio.create_task(
            link.station.call(
                call.materialize(), suppress=False, unique_id=call.unique_id
            )
        )
        try:
            await asyncio.wait(
                {sending, link.lost}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not sending.done():
                sending.cancel()
                with contextlib.suppress(BaseException):
                    await sending
        try:
            result = sending.result()
        except (ConnectionClosed, asyncio.CancelledError):
            self.ledger.cut_off += 1
            self._failed(call)
            # The receive loop may not have seen the close yet.
            await asyncio.wait({link.lost}, timeout=CALL_TIMEOUT_S)
            return
        except TimeoutError:
            self.ledger.timeouts += 1
            self._failed(call)
            return
        except OCPPError:
            self.ledger.call_errors += 1
            call.unique_id = new_id()
            self._failed(call)
            await asyncio.sleep(RETRY_AFTER_ERROR_S)
            return

        self._outbox.popleft()
        if call.transactional:
            self.ledger.answered += 1
        call.answered(result)
        async with self._answered:
            self.last_answer_at = _now()
            self._answered.notify_all()

    async def answered_since(self, moment: datetime) -> None:
        """Wait until the CSMS answers a call of this charger after ``moment``."""
        async with self._answered:
            await self._answered.wait_for(
                lambda: self.last_answer_at is not None and self.last_answer_at > moment
            )

    def _failed(self, call: Outgoing) -> None:
        if call.transactional:
            return
        self._outbox.popleft()
        if call.given_up is not None:
            call.given_up()

    # -- The socket ----------------------------------------------------------------

    async def _connect_forever(self) -> None:
        index = 0
        backoff = RECONNECT_MIN_S
        while True:
            gateway = self.order[index % len(self.order)]
            try:
                ws = await websockets.connect(
                    self.urls[gateway],
                    subprotocols=[self.dialect.subprotocol],  # type: ignore[list-item]
                    open_timeout=10,
                    close_timeout=2,
                )
            except (OSError, TimeoutError, WebSocketException):
                self.ledger.refused_connects += 1
                index += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RECONNECT_MAX_S)
                continue
            backoff = RECONNECT_MIN_S
            await self._serve(ws, gateway)

    async def _serve(self, ws: Any, gateway: str) -> None:
        station = self.dialect.station(self.charger_id, ws, self, CALL_TIMEOUT_S)
        lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._link = Link(station, gateway, lost)
        self.ledger.connections.append(gateway)
        self._online.set()
        await self._tell_link_changed()
        try:
            await station.start()
        except ConnectionClosed:
            pass
        except Exception:
            logger.exception("charger %s: receive loop failed", self.charger_id)
        finally:
            self._online.clear()
            self._link = None
            lost.set_result(None)
            await self._tell_link_changed()
            with contextlib.suppress(Exception):
                await ws.close()

    async def _tell_link_changed(self) -> None:
        async with self._link_changed:
            self._link_changed.notify_all()


class Fleet:
    """N chargers, half 1.6 and half 2.0.1, spread over the gateways."""

    def __init__(self, chargers: list[FaultCharger]) -> None:
        self.chargers = chargers

    def start(self) -> None:
        for charger in self.chargers:
            charger.start()

    async def finish(self, timeout_s: float) -> None:
        """Let every charger end its session and deliver all it queued.

        Raises:
            TimeoutError: some charger still has calls unanswered.
        """
        for charger in self.chargers:
            charger.finishing.set()
        async with asyncio.timeout(timeout_s):
            await asyncio.gather(*(c.drained() for c in self.chargers))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.chargers))

    async def answered_since(self, moment: datetime) -> None:
        """Wait until every charger has had an answer after ``moment``."""
        await asyncio.gather(*(c.answered_since(moment) for c in self.chargers))

    async def charging(self) -> None:
        """Wait until the CSMS has answered a start of every charger."""
        await asyncio.gather(*(c.started_once.wait() for c in self.chargers))

    async def connected_to(self, gateway: str, chargers: list[FaultCharger]) -> None:
        """Wait until each of ``chargers`` is connected through ``gateway``."""
        await asyncio.gather(*(c.connected_to(gateway) for c in chargers))

    @property
    def ledgers(self) -> list[Ledger]:
        return [c.ledger for c in self.chargers]


def _now() -> datetime:
    return datetime.now(UTC)
