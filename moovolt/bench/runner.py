"""One bench run: start what it needs, measure every figure, clean up.

The stack (``moovolt.bench.stack``) and the three baselines' processes (a
raw ``websockets`` echo, an aio-pika RPC responder, a bare Temporal worker)
start once; then, for each number of chargers, the socket benchmarks run on
the gateway and on the echo, and the session benchmark on the gateway.
Every charger the bench needs is registered up front.
"""

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bus.contract import Topology
from moovolt.bench import measures
from moovolt.bench.measures import (
    Baselines,
    Profile,
    SessionFigures,
    SocketFigures,
)
from moovolt.bench.procstat import Machine
from moovolt.bench.profiling import breakdown
from moovolt.bench.stack import (
    BenchStack,
    Child,
    bench_stack,
    delete_bus,
    free_port,
    python_module,
    wait_listening,
)
from moovolt.settings import Settings
from moovolt.sim.provision import provision
from moovolt.sim.scenario import Scenario

logger = logging.getLogger(__name__)

PREFIX = "bench"
# The throughput benchmark pushes each socket as hard as it is answered; the
# per-charger frame budget still runs on every frame, with room to spare.
UNLIMITED = {
    "MOOVOLT_GATEWAY_RATE_PER_S": "1000000",
    "MOOVOLT_GATEWAY_RATE_BURST": "1000000",
}


@dataclass
class Results:
    """Everything one run measured."""

    quick: bool
    chargers: list[int]
    machine_before: Machine
    machine_after: Machine | None = None
    baselines: Baselines | None = None
    gateway: dict[int, SocketFigures] = field(default_factory=dict)
    echo: dict[int, SocketFigures] = field(default_factory=dict)
    sessions: dict[int, SessionFigures] = field(default_factory=dict)
    elapsed_s: float = 0.0
    profiled: str = ""
    profile: str = ""


@contextlib.asynccontextmanager
async def _process(child: Child, port: int | None = None) -> AsyncIterator[Child]:
    child.start()
    try:
        if port is not None:
            await wait_listening(child, port)
        yield child
    finally:
        await child.stop()


async def _sg_ready(stack: BenchStack, timeout_s: float = 60.0) -> None:
    """Wait until the SG worker consumes decision requests."""
    import aio_pika

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    connection = await aio_pika.connect(stack.amqp_url)
    async with connection:
        while True:
            channel = await connection.channel()
            queue = await channel.declare_queue(
                Topology(stack.prefix).decisions, passive=True
            )
            consumers = queue.declaration_result.consumer_count
            await channel.close()
            if consumers:
                return
            if stack.worker.exited() is not None or loop.time() > deadline:
                raise RuntimeError(f"SG worker not ready:\n{stack.worker.tail()}")
            await asyncio.sleep(0.3)


def _profiled(command: list[str], stats_file: Path) -> list[str]:
    """Return ``command`` (``python -m ...``) run under cProfile."""
    return [sys.executable, "-m", "cProfile", "-o", str(stats_file), *command[1:]]


async def run_bench(
    base: Settings,
    chargers: list[int],
    *,
    quick: bool,
    keep_logs: bool = False,
    profile: str | None = None,
) -> Results:
    """Run every benchmark for each number of ``chargers``; return the figures.

    Args:
        base: names the PostgreSQL and RabbitMQ to use.
        chargers: the sizes to measure.
        quick: run the short profile.
        keep_logs: keep the processes' logs (the path is logged).
        profile: ``gateway`` or ``worker``: run that process under cProfile
            and put where its CPU went in ``Results.profile``.
    """
    timing = Profile.quick() if quick else Profile.full()
    results = Results(quick=quick, chargers=chargers, machine_before=Machine.here())
    began = time.monotonic()
    async with bench_stack(base, UNLIMITED, keep_logs=keep_logs) as stack:
        gateway_command = list(stack.gateway.command)
        stats_files: list[Path] = []
        if profile == "worker":
            stats_files.append(stack.workdir / "worker.pstats")
            await stack.worker.stop()
            stack.worker.command = _profiled(stack.worker.command, stats_files[-1])
            stack.worker.start()

        async def fresh_gateway(size: int) -> None:
            """Restart the gateway: each size's memory starts from a new process."""
            await stack.gateway.stop()
            stack.gateway.command = gateway_command
            if profile == "gateway":
                stats_files.append(stack.workdir / f"gateway-{size}.pstats")
                stack.gateway.command = _profiled(gateway_command, stats_files[-1])
            stack.gateway.start()
            await wait_listening(stack.gateway, stack.gateway_port)

        await _sg_ready(stack)
        await _measure(stack, results, timing, fresh_gateway)
        if profile is not None:
            await (stack.gateway if profile == "gateway" else stack.worker).stop()
            written = [path for path in stats_files if path.exists()]
            results.profile = (
                breakdown(written) if written else f"(the {profile} wrote no profile)"
            )
            results.profiled = profile
    results.machine_after = Machine.here()
    results.elapsed_s = time.monotonic() - began
    return results


async def _measure(
    stack: BenchStack,
    results: Results,
    profile: Profile,
    fresh_gateway: Callable[[int], Awaitable[None]],
) -> None:
    largest = max(results.chargers)
    everyone = Scenario(
        url=stack.gateway_url, chargers=largest, duration_s=1.0, prefix=PREFIX
    )
    await provision(everyone, stack.database_url)
    ids = [everyone.charger_id(i) for i in range(largest)]

    rpc_queue = f"{stack.prefix}.bench.rpc"
    bare_queue = f"{stack.prefix}-bare"
    address = stack.env["MOOVOLT_TEMPORAL_ADDRESS"]
    responder = Child(
        "rpc",
        python_module("moovolt.bench.rpc", stack.amqp_url, rpc_queue),
        stack.env,
        stack.workdir,
    )
    bare_worker = Child(
        "bare",
        python_module("moovolt.bench.bare", address, bare_queue),
        stack.env,
        stack.workdir,
    )
    busy = [stack.worker.pid]
    try:
        async with _process(responder), _process(bare_worker):
            logger.info("baselines: aio-pika RPC, bare Temporal workflow")
            results.baselines = await measures.baselines(
                stack, rpc_queue, bare_queue, profile
            )
        for n in results.chargers:
            logger.info("%d chargers: sockets on a fresh gateway", n)
            await fresh_gateway(n)
            await measures.wait_idle([stack.gateway.pid, *busy])
            results.gateway[n] = await measures.sockets(
                stack.gateway.pid, stack.gateway_url, ids[:n], profile.pump_s
            )
            await measures.wait_idle([stack.gateway.pid, *busy])

            logger.info("%d chargers: sockets on a fresh raw websockets echo", n)
            port = free_port()
            echo = Child(
                f"echo-{n}",
                python_module("moovolt.bench.echo", str(port)),
                stack.env,
                stack.workdir,
            )
            async with _process(echo, port):
                results.echo[n] = await measures.sockets(
                    echo.pid, f"ws://127.0.0.1:{port}/ocpp/", ids[:n], profile.pump_s
                )

            logger.info("%d chargers: sessions", n)
            scenario = measures.scenario_for(stack, n, profile, prefix=PREFIX)
            results.sessions[n] = await measures.sessions(
                stack, scenario, profile.session_s
            )
            await measures.wait_idle([stack.gateway.pid, *busy])
    finally:
        await delete_bus(stack.amqp_url, Topology(stack.prefix), rpc_queue)
