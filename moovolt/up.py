"""``moovolt up``: the whole stack on one machine, in the foreground.

Order: database (create, migrate, demo seed), Temporal (the dev server, or a
server that already answers), then the gateway, the worker and the API as
child processes, and waits until each says it is ready (``/readyz``). SIGINT
or SIGTERM stops the children (SIGTERM, which lets each drain for
``MOOVOLT_SHUTDOWN_GRACE_S``, then SIGKILL if one is still there after that
and a margin) and then Temporal; a child that dies takes the rest down and
makes ``up`` exit non-zero.
"""

import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field

from moovolt.demo import DemoSeed, is_empty, seed
from moovolt.logs import setup_logging
from moovolt.probes import READYZ, fetch_status
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from store.migrate import ensure_database, upgrade_async
from temporal.client import connect
from temporal.devserver import DevServer, DevServerConfig, split_address
from temporal.search_attributes import ensure_search_attributes

logger = logging.getLogger(__name__)

GRACE_S = 10.0
# Beyond a child's drain: shutting its Temporal worker down, closing the bus.
KILL_MARGIN_S = 10.0
READY_TIMEOUT_S = 60.0


@dataclass
class Child:
    """A process of the stack, run as ``python -m moovolt.cli <role>``.

    Attributes:
        role: the CLI command (gateway, worker, api).
        name: how logs call it (``gateway-2`` when there are several).
        env: settings of this process only, on top of ``up``'s environment.
        probe: the port and path that say it is ready (no path: listening).
    """

    role: str
    name: str
    env: dict[str, str] = field(default_factory=dict)
    probe: tuple[int, str | None] | None = None
    process: asyncio.subprocess.Process | None = field(default=None)

    async def start(self) -> None:
        # Own process group: Ctrl-C reaches `up` only, which stops us in order.
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "moovolt.cli",
            self.role,
            stdin=asyncio.subprocess.DEVNULL,
            process_group=0,
            env={**os.environ, **self.env},
        )
        logger.info("started %s (pid %d)", self.name, self.process.pid)

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()


def stack_children(settings: Settings, *, gateways: int, workers: int) -> list[Child]:
    """Return the processes of a stack with ``gateways`` gateways and ``workers``.

    Gateway ``i`` (from 1) listens on ``MOOVOLT_GATEWAY_PORT + i - 1`` with id
    ``<MOOVOLT_GATEWAY_ID>-<i>``; worker ``i``'s probes are on
    ``MOOVOLT_WORKER_HEALTH_PORT + i - 1``. One of each keeps the settings as
    they are.
    """
    gateway_probe = None if settings.gateway_tls_cert_file else READYZ
    children = []
    for i in range(gateways):
        port = settings.gateway_port + i
        env = {}
        if gateways > 1:
            env = {
                "MOOVOLT_GATEWAY_ID": f"{settings.gateway_id}-{i + 1}",
                "MOOVOLT_GATEWAY_PORT": str(port),
            }
        name = f"gateway-{i + 1}" if gateways > 1 else "gateway"
        children.append(Child("gateway", name, env, (port, gateway_probe)))
    for i in range(workers):
        health = settings.worker_health_port + i if settings.worker_health_port else 0
        env = {"MOOVOLT_WORKER_HEALTH_PORT": str(health)} if workers > 1 else {}
        name = f"worker-{i + 1}" if workers > 1 else "worker"
        children.append(
            Child("worker", name, env, (health, READYZ) if health else None)
        )
    children.append(Child("api", "api", {}, (settings.api_port, READYZ)))
    return children


async def _prepare_database(settings: Settings, *, demo: bool) -> DemoSeed | None:
    await ensure_database(settings.database_url)
    await upgrade_async(settings.database_url)
    if not demo:
        return None

    engine = make_engine(settings.database_url, pool_size=1)
    try:
        async with make_sessionmaker(engine)() as db:
            return await seed(db) if await is_empty(db) else None
    finally:
        await engine.dispose()


async def _start_temporal(settings: Settings) -> DevServer | None:
    """Use a Temporal server that already answers, else start the dev server."""
    try:
        client = await asyncio.wait_for(connect(settings), 3)
    except (RuntimeError, TimeoutError):
        dev = DevServer(DevServerConfig.from_settings(settings))
        await dev.start(settings, timeout_s=READY_TIMEOUT_S)
        return dev

    logger.info("using the Temporal server at %s", settings.temporal_address)
    await ensure_search_attributes(client, settings.temporal_namespace)
    return None


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def _is_ready(port: int, path: str | None) -> bool:
    if path is None:
        return await _port_open("127.0.0.1", port)
    return await fetch_status("127.0.0.1", port, path) == 200


async def _wait_ready(children: list[Child]) -> bool:
    """Wait until every child that has a probe says it is ready.

    Returns:
        False if a child exited first; True otherwise, also after a timeout
        (logged), so that a slow start still gets the banner.
    """
    # No path means listening is all that can be checked: the gateway's
    # probes are on its TLS port when it serves TLS.
    waiting = {c.name: c.probe for c in children if c.probe is not None}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while loop.time() < deadline:
        if any(c.process and c.process.returncode is not None for c in children):
            return False
        for role, (port, path) in list(waiting.items()):
            if await _is_ready(port, path):
                del waiting[role]
        if not waiting:
            return True
        await asyncio.sleep(0.3)
    logger.warning(
        "not ready after %.0f s: %s", READY_TIMEOUT_S, ", ".join(sorted(waiting))
    )
    return True


async def _stop_children(children: list[Child], grace_s: float) -> None:
    running = [c for c in children if c.process and c.process.returncode is None]
    for child in running:
        assert child.process is not None
        child.process.terminate()
    if not running:
        return

    _, pending = await asyncio.wait(
        [asyncio.ensure_future(c.wait()) for c in running], timeout=grace_s
    )
    for child in running:
        assert child.process is not None
        if child.process.returncode is None:
            logger.warning("%s ignored SIGTERM; killing it", child.name)
            child.process.kill()
    if pending:
        await asyncio.wait(pending)


async def run_stack(
    settings: Settings, *, demo: bool, gateways: int = 1, workers: int = 1
) -> int:
    """Run the stack until a signal (exit 0) or a dying process (exit 1)."""
    seeded = await _prepare_database(settings, demo=demo)
    dev = await _start_temporal(settings)
    children = stack_children(settings, gateways=gateways, workers=workers)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    status = 0
    try:
        for child in children:
            await child.start()
        if await _wait_ready(children):
            print_banner(settings, seeded, demo=demo, gateways=gateways)
        elif seeded is not None:
            # The token is shown once; do not lose it to a failed start.
            print_demo(settings, seeded)

        watched = {asyncio.ensure_future(c.wait()): c.name for c in children}
        if dev is not None and dev.process is not None:
            watched[asyncio.ensure_future(dev.process.wait())] = "temporal"
        stopping = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait(
            [stopping, *watched], return_when=asyncio.FIRST_COMPLETED
        )
        for task in done:
            if task in watched:
                logger.error(
                    "%s exited with %s; stopping", watched[task], task.result()
                )
                status = 1
        if status == 0:
            logger.info("stopping")
        stopping.cancel()
        for task in watched:
            task.cancel()
    finally:
        await _stop_children(children, settings.shutdown_grace_s + KILL_MARGIN_S)
        if dev is not None:
            await dev.stop(grace_s=GRACE_S)
    return status


def run_up(
    settings: Settings, *, demo: bool, gateways: int = 1, workers: int = 1
) -> int:
    """Run ``moovolt up``; returns the exit status."""
    setup_logging(settings.log_level, "up")
    return asyncio.run(
        run_stack(settings, demo=demo, gateways=gateways, workers=workers)
    )


def print_demo(settings: Settings, seeded: DemoSeed) -> None:
    """Print what the demo seed added and the admin's API token."""
    print(f"demo chargers added: {', '.join(seeded.chargers) or 'none'}")
    print(f"demo id tokens added: {', '.join(seeded.id_tokens) or 'none'}")
    print(f"API token of {seeded.admin} (admin), shown once:")
    print(f"  {seeded.token}")


def print_banner(
    settings: Settings, seeded: DemoSeed | None, *, demo: bool, gateways: int = 1
) -> None:
    """Print where everything is and how to try it."""
    api = f"http://localhost:{settings.api_port}"
    scheme = "wss" if settings.gateway_tls_cert_file else "ws"
    gateway = f"{scheme}://localhost:{settings.gateway_port}{settings.gateway_path}"
    last = settings.gateway_port + gateways - 1
    ports = f" (ports {settings.gateway_port}-{last})" if gateways > 1 else ""
    host, port = split_address(settings.temporal_address)
    token = seeded.token if seeded else "<your API token>"
    worker_probes = (
        f":{settings.worker_health_port} (worker), "
        if settings.worker_health_port
        else ""
    )
    lines = [
        "",
        "moov.olt is up. Ctrl-C stops everything.",
        "",
        f"  OCPP gateway   {gateway}<charger id>{ports}",
        f"                 (2.0.1 or 1.6: {gateway}demo-1)",
        f"  API            {api}/api/v1   (docs: {api}/docs)",
        f"  dashboard      {api}/",
        f"  Temporal       {host}:{port}, UI {settings.temporal_ui_url}",
        f"  probes         /healthz /readyz /metrics on :{settings.gateway_port}"
        f" (gateway), {worker_probes}:{settings.api_port} (API)",
        "",
    ]
    if seeded is not None:
        lines += [
            "  Demo network: chargers demo-1..3 (no password), id tokens "
            "DEMO-TAG-1..3,",
            "  tariff 0.35 EUR/kWh + 0.05 EUR/min + 0.50 EUR/session, VAT 21 %.",
            f"  Admin API token (shown once): {seeded.token}",
            "",
        ]
    elif demo:
        lines += [
            "  The database already had data, so nothing was seeded. Get a token:",
            "    .venv/bin/moovolt operator token demo-admin",
            "",
        ]
    lines += [
        "  Try it (after connecting a charger simulator as demo-1):",
        f"    curl -H 'Authorization: Bearer {token}' {api}/api/v1/chargers",
        f"    curl -X POST -H 'Authorization: Bearer {token}' \\",
        "         -H 'Content-Type: application/json' \\",
        '         -d \'{"connector_id": 1, "id_token": "DEMO-TAG-1"}\' \\',
        f"         {api}/api/v1/chargers/demo-1/remote-start",
        "",
    ]
    print("\n".join(lines), flush=True)
