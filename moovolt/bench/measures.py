"""The figures of one bench run, each measured beside its baseline.

* ``sockets``: idle sockets held and memory per idle socket (RSS before and
  after, from ``/proc``), then heartbeats and meter values per second
  through the same sockets; the same load on the raw ``websockets`` echo.
  Throughput is also given per CPU-second of the server process, which is
  what one process can do on a core of its own: on a shared 2-core machine
  the wall-clock figure also measures who else wanted the CPU.
* ``sessions``: simulated chargers charging (authorize, start, 10 meter
  values, stop) at a steady pace; decision round trips from the chargers'
  side, billed sessions per second from the CDRs the SG wrote.
* ``baselines``: a raw aio-pika RPC and a bare Temporal workflow.
"""

import asyncio
import logging
import math
from array import array
from dataclasses import dataclass

from moovolt.bench import bare, rpc
from moovolt.bench.load import Sockets, heartbeat_frame, meter_frame
from moovolt.bench.procstat import cpu_s, rss_kib
from moovolt.bench.stack import BenchStack
from moovolt.sim.report import Report, percentile
from moovolt.sim.scenario import Deadline, Scenario, run_scenario

logger = logging.getLogger(__name__)

SETTLE_S = 2.0
# Chargers connecting and booting at once in the session benchmark.
CONNECTING = 50
# The longest the session benchmark waits for its chargers to be admitted.
ADMIT_LIMIT_S = 900.0
# No charger booted for this long: the rest will not.
STALLED_S = 60.0
START_ACTIONS = ("StartTransaction", "TransactionEvent/Started")


@dataclass(frozen=True)
class Profile:
    """How long and how hard each part of the bench runs."""

    pump_s: float
    meter_interval_s: float
    session_s: float
    baseline_s: float
    rpc_concurrency: int
    bare_concurrency: int

    @classmethod
    def full(cls) -> "Profile":
        return cls(
            pump_s=10.0,
            meter_interval_s=10.0,
            session_s=40.0,
            baseline_s=10.0,
            rpc_concurrency=1,
            bare_concurrency=10,
        )

    @classmethod
    def quick(cls) -> "Profile":
        return cls(
            pump_s=1.0,
            meter_interval_s=0.1,
            session_s=4.0,
            baseline_s=1.0,
            rpc_concurrency=1,
            bare_concurrency=4,
        )


async def wait_idle(
    pids: list[int], *, busy_share: float = 0.1, timeout_s: float = 120.0
) -> None:
    """Wait until none of ``pids`` uses more than ``busy_share`` of a CPU.

    Between two parts of the bench the gateway and the SG finish what the
    last part left them (thousands of goodbyes, bindings to drop), so that
    it does not count against the next.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        before = [cpu_s(pid) for pid in pids]
        await asyncio.sleep(1.0)
        used = [cpu_s(pid) - was for pid, was in zip(pids, before, strict=True)]
        if max(used) < busy_share:
            return
    logger.warning("processes %s still busy after %.0f s", pids, timeout_s)


@dataclass(frozen=True)
class SocketFigures:
    """Sockets held by one server process, and what it answers through them.

    Attributes:
        held: sockets open after the idle period that answered a call.
        failed: sockets that could not be opened.
        kib_per_socket: resident memory added per idle socket.
        heartbeats_per_s, meters_per_s: answers per second, wall clock.
        heartbeats_per_cpu_s, meters_per_cpu_s: answers per CPU-second of
            the server process.
        errors: CALLERRORs among the answers.
    """

    held: int
    failed: int
    kib_per_socket: float
    heartbeats_per_s: float
    heartbeats_per_cpu_s: float
    meters_per_s: float
    meters_per_cpu_s: float
    errors: int


async def sockets(
    pid: int, base_url: str, charger_ids: list[str], pump_s: float
) -> SocketFigures:
    """Measure the server process ``pid`` at ``base_url`` with one socket per id."""
    load = Sockets(base_url)
    before = rss_kib(pid)
    try:
        await load.connect(charger_ids)
        await asyncio.sleep(SETTLE_S)
        after = rss_kib(pid)
        opened = len(load.open)
        rates = []
        errors = 0
        held = 0
        for frame in (heartbeat_frame, meter_frame):
            cpu_before = cpu_s(pid)
            pumped = await load.pump(frame, pump_s)
            cpu = cpu_s(pid) - cpu_before
            rates += [pumped.per_s, pumped.answers / cpu if cpu > 0 else math.nan]
            errors += pumped.errors
            held = max(held, min(opened, pumped.sockets_answered))
    finally:
        await load.close()
    return SocketFigures(
        held=held,
        failed=load.failed,
        kib_per_socket=(after - before) / opened if opened else math.nan,
        heartbeats_per_s=rates[0],
        heartbeats_per_cpu_s=rates[1],
        meters_per_s=rates[2],
        meters_per_cpu_s=rates[3],
        errors=errors,
    )


@dataclass(frozen=True)
class SessionFigures:
    """Chargers running sessions at a steady pace.

    Attributes:
        report: what the simulated chargers sent and got back.
        authorize_ms, start_ms: (p50, p99) of the decision round trips.
        billed_per_s: CDRs written per second once sessions were steady.
        billed: CDRs written in all.
        offered_per_s: sessions per second the chargers asked for.
        booted_per_s: chargers connected and booted per second, at
            ``CONNECTING`` at a time.
    """

    report: Report
    authorize_ms: tuple[float, float]
    start_ms: tuple[float, float]
    billed_per_s: float
    billed: int
    offered_per_s: float
    booted_per_s: float


def scenario_for(
    stack: BenchStack, chargers: int, profile: Profile, *, prefix: str
) -> Scenario:
    """Return the paced session scenario for ``chargers`` chargers.

    Chargers connect and boot as fast as the SG admits them (``CONNECTING``
    at a time), then each starts its first session after a random part of a
    session cycle, so that sessions start and end at an even pace.
    """
    cycle = 12 * profile.meter_interval_s  # 10 meter values, stop, a pause
    return Scenario(
        url=stack.gateway_url,
        chargers=chargers,
        duration_s=ADMIT_LIMIT_S,  # the bench ends the run (``sessions``)
        share_201=0.5,
        meter_interval_s=profile.meter_interval_s,
        meter_values=10,
        sessions=0,
        reconnect_probability=0.0,
        pause_s=profile.meter_interval_s,
        ramp_s=0.0,
        connect_concurrency=CONNECTING,
        spread_s=cycle,
        prefix=prefix,
        call_timeout_s=15.0,
        grace_s=60.0,
        seed=1,
    )


async def sessions(
    stack: BenchStack, scenario: Scenario, steady_s: float
) -> SessionFigures:
    """Run ``scenario``; count the CDRs written while sessions were steady.

    The steady window opens once every charger has booted and a session
    cycle has passed, and lasts ``steady_s``; then the chargers stop.
    """
    loop = asyncio.get_running_loop()
    before = await _cdrs(stack)
    report = Report()
    began = loop.time()
    deadline = Deadline(began + ADMIT_LIMIT_S)
    running = asyncio.create_task(run_scenario(scenario, report, deadline=deadline))
    booted = await _all_booted(report, scenario.chargers, running)
    admitted_s = loop.time() - began
    await asyncio.sleep(12 * scenario.meter_interval_s)
    counted_from = (await _cdrs(stack), loop.time())
    await asyncio.sleep(steady_s)
    counted_to = (await _cdrs(stack), loop.time())
    deadline.move(loop.time())
    await running
    billed = await _settle_cdrs(stack, before + report.sessions_completed)
    rate = (counted_to[0] - counted_from[0]) / (counted_to[1] - counted_from[1])
    cycle = 11 * scenario.meter_interval_s + scenario.pause_s
    return SessionFigures(
        report=report,
        authorize_ms=_p50_p99(report, ("Authorize",)),
        start_ms=_p50_p99(report, START_ACTIONS),
        billed_per_s=rate,
        billed=billed - before,
        offered_per_s=scenario.chargers / cycle,
        booted_per_s=booted / admitted_s if admitted_s else math.nan,
    )


async def _all_booted(
    report: Report, chargers: int, running: "asyncio.Task[Report]"
) -> int:
    """Wait until every charger has booted, or none has for a while."""
    loop = asyncio.get_running_loop()
    last, progress_at = -1, loop.time()
    while not running.done():
        booted = report.boots.get("Accepted", 0)
        if booted >= chargers or loop.time() - progress_at > STALLED_S:
            return booted
        if booted != last:
            last, progress_at = booted, loop.time()
        await asyncio.sleep(0.5)
    return report.boots.get("Accepted", 0)


def _p50_p99(report: Report, actions: tuple[str, ...]) -> tuple[float, float]:
    merged: array[float] = array("d")
    for action in actions:
        merged.extend(report.latencies.get(action, array("d")))
    return percentile(merged, 0.5) * 1000, percentile(merged, 0.99) * 1000


async def _cdrs(stack: BenchStack) -> int:
    rows = await stack.sql("SELECT count(*) AS n FROM cdr")
    return int(rows[0]["n"])


async def _settle_cdrs(stack: BenchStack, expected: int, wait_s: float = 60.0) -> int:
    """Wait until ``expected`` CDRs exist (billing follows the stop), or time out."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        found = await _cdrs(stack)
        if found >= expected or loop.time() > deadline:
            return found
        await asyncio.sleep(0.5)


@dataclass(frozen=True)
class Baselines:
    """The baselines that do not depend on the number of chargers.

    Attributes:
        rpc_ms: (p50, p99) of a raw aio-pika RPC round trip, one at a time.
        bare_start_ms: (p50, p99) of a bare workflow's update-with-start,
            one at a time.
        bare_sessions_per_s: bare workflows started, stopped, billed per s.
    """

    rpc_ms: tuple[float, float]
    bare_start_ms: tuple[float, float]
    bare_sessions_per_s: float


async def baselines(
    stack: BenchStack, rpc_queue: str, bare_queue: str, profile: Profile
) -> Baselines:
    """Measure the bus's and Temporal's baselines."""
    trips = await rpc.round_trips(
        stack.amqp_url,
        rpc_queue,
        concurrency=profile.rpc_concurrency,
        seconds=profile.baseline_s,
    )
    address = stack.env["MOOVOLT_TEMPORAL_ADDRESS"]
    # One at a time for the latency floor, several for the throughput.
    _, starts, _ = await bare.sessions(
        address, bare_queue, concurrency=1, seconds=profile.baseline_s
    )
    completed, _, took = await bare.sessions(
        address,
        bare_queue,
        concurrency=profile.bare_concurrency,
        seconds=profile.baseline_s,
    )
    return Baselines(
        rpc_ms=(percentile(trips, 0.5) * 1000, percentile(trips, 0.99) * 1000),
        bare_start_ms=(
            percentile(starts, 0.5) * 1000,
            percentile(starts, 0.99) * 1000,
        ),
        bare_sessions_per_s=completed / took if took else math.nan,
    )
