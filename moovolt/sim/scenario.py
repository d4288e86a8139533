"""A scenario: N chargers behaving like chargers, for a bounded time.

Each charger connects (spread over the ramp), boots, reports its connector
Available, then runs sessions until the duration is up: authorize, start,
meter values every ``meter_interval_s``, stop, with the connector statuses of
its version around them, and heartbeats while it is otherwise quiet. After a
session it may drop its socket and reconnect (``reconnect_probability``).
When the duration is up (or the ``Deadline`` a caller moves), a session in
progress is stopped at once, so that every session started is also ended;
nothing runs past the deadline plus ``grace_s``. A boot or a transaction
message the CSMS failed to answer is sent again, as chargers do.
"""

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from moovolt.sim.client import Answer, ConnectFailed, SimCharger
from moovolt.sim.payloads import FLAVOURS, Call, Transaction, samples_in
from moovolt.sim.report import Report

logger = logging.getLogger(__name__)

# CALLERRORs after which a charger sends a transaction message again: the
# CSMS could not take it now (OCPP's retry of transaction-related messages).
RETRIED = frozenset({"InternalError", "GenericError"})
ATTEMPTS = 3
RETRY_PAUSE_S = 0.5
BOOT_RETRY_S = 5.0
START_METER_WH = 10_000


@dataclass(frozen=True)
class Scenario:
    """What to simulate.

    Attributes:
        url: the gateway's base URL; the charge point id is appended.
        chargers: how many chargers.
        duration_s: how long chargers start new activity.
        share_201: the fraction of chargers that speak 2.0.1 (the rest 1.6).
        meter_interval_s: pause between two meter values of a session.
        meter_values: meter values per session.
        sessions: sessions per charger; 0 runs them until the duration is up.
        reconnect_probability: chance to drop and reopen the socket after a
            session.
        heartbeat_s: heartbeat interval; None takes the boot answer's.
        pause_s: pause between two sessions of a charger.
        ramp_s: connects are spread over this long.
        connect_concurrency: at most this many chargers connect and boot at
            once (0: no bound), so that a slow CSMS admits them as fast as
            it can instead of timing them out.
        spread_s: each charger's first session waits a random part of this
            long, so that sessions do not all start together.
        prefix: charger ids are ``<prefix>-<n>``, id tokens ``<PREFIX>-<n>``.
        call_timeout_s: how long a call waits for its answer.
        grace_s: how long past the duration a session may take to end.
        statuses: send the connector statuses around sessions.
        seed: seeds the reconnect draws, for a repeatable run.
    """

    url: str
    chargers: int
    duration_s: float
    share_201: float = 0.5
    meter_interval_s: float = 5.0
    meter_values: int = 10
    sessions: int = 0
    reconnect_probability: float = 0.05
    heartbeat_s: float | None = None
    pause_s: float = 1.0
    ramp_s: float = 1.0
    connect_concurrency: int = 0
    spread_s: float = 0.0
    prefix: str = "sim"
    call_timeout_s: float = 30.0
    grace_s: float = 60.0
    statuses: bool = True
    seed: int | None = None

    def charger_id(self, index: int) -> str:
        """Return the charge point id of charger ``index`` (from 0)."""
        return f"{self.prefix}-{index:05d}"

    def id_token(self, index: int) -> str:
        """Return the id token of charger ``index``: at most 20 characters."""
        return f"{self.prefix.upper()}-{index:05d}"[:20]

    def version(self, index: int) -> str:
        """Return charger ``index``'s OCPP version, the two interleaved."""
        is_201 = math.floor((index + 1) * self.share_201) > math.floor(
            index * self.share_201
        )
        return "2.0.1" if is_201 else "1.6"


class Deadline:
    """When the chargers stop starting anything new, in event-loop time.

    Whoever runs a scenario may move it (``moovolt bench`` ends a run once
    it has measured); chargers that are waiting wake up to look.
    """

    def __init__(self, at: float) -> None:
        self.at = at
        self._moved = asyncio.Event()

    def left(self) -> float:
        """Return the seconds left before the deadline (negative after it)."""
        return self.at - asyncio.get_running_loop().time()

    def move(self, at: float) -> None:
        """Set the deadline to ``at`` and wake every charger that waits."""
        self.at = at
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, less if the deadline comes or moves first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(
                self._moved.wait(), max(0.0, min(seconds, self.left()))
            )


async def run_scenario(
    scenario: Scenario,
    report: Report | None = None,
    *,
    deadline: Deadline | None = None,
    on_charger: Callable[[SimCharger], None] | None = None,
) -> Report:
    """Run ``scenario`` and return its report.

    Args:
        scenario: what to simulate.
        report: a report to count into (a new one if None).
        deadline: when to stop; ``scenario.duration_s`` from now if None.
        on_charger: called with each charger once it is created.
    """
    report = report or Report()
    rng = random.Random(scenario.seed)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = deadline or Deadline(started + scenario.duration_s)
    gate = asyncio.Semaphore(scenario.connect_concurrency or scenario.chargers)
    tasks = []
    for index in range(scenario.chargers):
        charger = SimCharger(
            scenario.url,
            scenario.charger_id(index),
            FLAVOURS[scenario.version(index)],
            report,
            call_timeout_s=scenario.call_timeout_s,
        )
        if on_charger is not None:
            on_charger(charger)
        delay = scenario.ramp_s * index / max(1, scenario.chargers)
        behaviour = Behaviour(scenario, index, charger, deadline, rng.random())
        tasks.append(asyncio.create_task(behaviour.run(delay, gate)))
    try:
        pending = set(tasks)
        while pending:
            # The deadline may move: look again every few seconds.
            left = deadline.left() + scenario.grace_s
            if left <= 0:
                logger.warning("chargers still busy after the grace period; stopped")
                break
            _, pending = await asyncio.wait(pending, timeout=min(left, 5.0))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    report.elapsed_s = loop.time() - started
    return report


class Behaviour:
    """One charger's life in a scenario."""

    def __init__(
        self,
        scenario: Scenario,
        index: int,
        charger: SimCharger,
        deadline: Deadline,
        draw: float,
    ) -> None:
        self.scenario = scenario
        self.index = index
        self.charger = charger
        self.report = charger.report
        self.deadline = deadline
        self.rng = random.Random(draw)
        self.flavour = charger.flavour
        self.heartbeat_s = scenario.heartbeat_s
        self.meter_wh = START_METER_WH
        self._last_call = time.monotonic()
        self._beating: asyncio.Task[None] | None = None

    def _time_left(self) -> float:
        return self.deadline.left()

    async def run(self, delay: float, gate: asyncio.Semaphore) -> None:
        """Connect, boot, run sessions until the deadline, then close."""
        await asyncio.sleep(delay)
        try:
            async with gate:
                opened = await self._open(boot=True)
            if not opened:
                return
            await self._idle(self.rng.uniform(0, self.scenario.spread_s))
            sessions = 0
            while self._time_left() > 0 and (
                not self.scenario.sessions or sessions < self.scenario.sessions
            ):
                await self._session()
                sessions += 1
                await self._idle(self.scenario.pause_s)
                if self._time_left() > 0 and (
                    self.rng.random() < self.scenario.reconnect_probability
                ):
                    await self._close()
                    self.report.reconnects += 1
                    if not await self._open(boot=False):
                        return
        finally:
            await self._close()

    async def _open(self, *, boot: bool) -> bool:
        """Connect (retrying until the deadline), boot if asked, go Available."""
        while True:
            try:
                await self.charger.connect(open_timeout_s=self.scenario.call_timeout_s)
                break
            except ConnectFailed:
                if self._time_left() <= 0:
                    return False
                await asyncio.sleep(min(2.0, max(0.1, self._time_left())))
        if boot and not await self._boot():
            return False
        if self.scenario.statuses:
            await self._call(self.flavour.status(1, "Available"))
        self._beating = asyncio.create_task(self._heartbeats())
        return True

    async def _boot(self) -> bool:
        """Boot; a boot the CSMS failed to answer is sent again until accepted.

        Returns:
            Whether the charger was accepted; Pending and Rejected end it (a
            simulated charger is registered, or it is not).
        """
        while True:
            answer = await self._call(self.flavour.boot(self.charger.charger_id))
            status = self.flavour.boot_status(answer.payload) if answer.ok else None
            self.report.boots[status or answer.outcome] += 1
            if status == "Accepted":
                if self.heartbeat_s is None:
                    self.heartbeat_s = float(answer.payload.get("interval") or 300)
                return True
            if status is not None or self._time_left() <= 0:
                return False
            await self._idle(BOOT_RETRY_S)

    async def _close(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            self._beating = None
        await self.charger.close()

    async def _heartbeats(self) -> None:
        """Send a heartbeat whenever the charger was quiet for an interval."""
        interval = self.heartbeat_s or 300.0
        while True:
            quiet = time.monotonic() - self._last_call
            if quiet < interval:
                await asyncio.sleep(interval - quiet)
                continue
            if self._time_left() <= 0:
                return
            await self._call(self.flavour.heartbeat())

    async def _idle(self, seconds: float) -> None:
        await self.deadline.sleep(seconds)

    async def _call(self, call: Call, *, retried: bool = False) -> Answer:
        action, payload = call
        for attempt in range(1, ATTEMPTS + 1):
            self._last_call = time.monotonic()
            answer = await self.charger.call(action, payload)
            if not (retried and answer.outcome in RETRIED) or attempt == ATTEMPTS:
                break
            await asyncio.sleep(RETRY_PAUSE_S * attempt)
        if answer.ok:
            self.report.samples_stored += samples_in(call)
        return answer

    async def _session(self) -> None:
        """Authorize, start, meter, stop; each part counted in the report."""
        flavour = self.flavour
        token = self.scenario.id_token(self.index)
        before, during, after, idle = flavour.session_statuses
        answer = await self._call(flavour.authorize(token))
        if not answer.ok:
            return
        if flavour.token_status(answer.payload) != "Accepted":
            self.report.sessions_refused += 1
            return
        if self.scenario.statuses:
            await self._call(flavour.status(1, before))

        tx = Transaction(connector_id=1, id_token=token, meter_wh=self.meter_wh)
        flavour.open(tx)
        answer = await self._call(flavour.start(tx), retried=True)
        if not answer.ok:
            return
        flavour.started(tx, answer.payload)
        key = (self.charger.charger_id, str(tx.transaction_id))
        self.report.sessions_started += 1
        self.report.transactions.add(key)
        if self.scenario.statuses:
            await self._call(flavour.status(1, during))

        for _ in range(self.scenario.meter_values):
            await self._idle(self.scenario.meter_interval_s)
            if self._time_left() <= 0:
                break
            tx.meter_wh += self.rng.randint(50, 500)
            await self._call(flavour.meter(tx), retried=True)

        answer = await self._call(flavour.stop(tx), retried=True)
        self.meter_wh = tx.meter_wh
        if answer.ok:
            self.report.sessions_completed += 1
            self.report.completed.add(key)
        if self.scenario.statuses:
            await self._call(flavour.status(1, after))
            if after != idle:
                await self._call(flavour.status(1, idle))
