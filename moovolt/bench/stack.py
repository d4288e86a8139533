"""The stack a benchmark runs against, started and torn down by the bench.

Its own database on the local PostgreSQL (migrated, with the demo tariff),
its own bus prefix on the local RabbitMQ, a Temporal dev server on free
ports with its SQLite file in a temporary directory, and ``moovolt gateway``
and ``moovolt worker`` as child processes, exactly as an operator starts
them. Everything it created is removed on the way out, also after a failure.
"""

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import asyncpg

from bus.contract import Topology
from moovolt.demo import demo_tariff
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from store.migrate import ensure_database, upgrade_async
from temporal.devserver import DevServer, DevServerConfig, temporal_executable

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 15.0


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def admin_dsn(database_url: str, database: str = "postgres") -> str:
    """Return an asyncpg DSN for ``database`` on the server of ``database_url``."""
    base = database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    return base.rsplit("/", 1)[0] + f"/{database}"


class Child:
    """A child process with its output in a log file."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], logs: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log_path = logs / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} is not running"
        return self.popen.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def exited(self) -> int | None:
        return None if self.popen is None else self.popen.poll()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        popen, self.popen = self.popen, None
        if popen is None or popen.poll() is not None:
            return
        popen.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.to_thread(popen.wait), STOP_GRACE_S)
        except TimeoutError:
            logger.warning("%s ignored SIGTERM; killing it", self.name)
            popen.kill()
            popen.wait()

    def tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


async def wait_listening(child: Child, port: int) -> None:
    """Wait until ``child`` accepts connections on ``port``.

    Raises:
        RuntimeError: it exited or did not listen in time; with its log.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT_S
    while loop.time() < deadline:
        if child.exited() is not None:
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{child.name} not listening:\n{child.tail()}")


def python_module(module: str, *args: str) -> list[str]:
    """Return the command line that runs ``module`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


class BenchStack:
    """The services and processes of one bench run.

    Args:
        base: the operator's settings: which PostgreSQL and RabbitMQ to use.
        workdir: where logs and Temporal's SQLite file go.
        overrides: more ``MOOVOLT_*`` variables for the gateway and worker.
    """

    def __init__(
        self, base: Settings, workdir: Path, overrides: dict[str, str] | None = None
    ) -> None:
        run_id = uuid.uuid4().hex[:8]
        self.run_id = run_id
        self.workdir = workdir
        self.database = f"moovolt_bench_{run_id}"
        self.database_url = base.database_url.rsplit("/", 1)[0] + f"/{self.database}"
        self.amqp_url = base.amqp_url
        self.prefix = f"bench-{run_id}"
        self.gateway_port = free_port()
        self.temporal_port = free_port()
        self.env = {
            **os.environ,
            "MOOVOLT_ENVIRONMENT": "test",
            "MOOVOLT_LOG_LEVEL": "INFO",
            "MOOVOLT_DATABASE_URL": self.database_url,
            "MOOVOLT_AMQP_URL": self.amqp_url,
            "MOOVOLT_BUS_PREFIX": self.prefix,
            "MOOVOLT_TEMPORAL_ADDRESS": f"127.0.0.1:{self.temporal_port}",
            "MOOVOLT_TEMPORAL_NAMESPACE": "default",
            "MOOVOLT_TEMPORAL_TASK_QUEUE": f"bench-{run_id}",
            "MOOVOLT_GATEWAY_ID": f"bench-gw-{run_id}",
            "MOOVOLT_GATEWAY_HOST": "127.0.0.1",
            "MOOVOLT_GATEWAY_PORT": str(self.gateway_port),
            "MOOVOLT_WORKER_HEALTH_PORT": "0",
            **(overrides or {}),
        }
        self.settings = Settings.model_validate(
            {
                "database_url": self.database_url,
                "amqp_url": self.amqp_url,
                "bus_prefix": self.prefix,
                "temporal_address": f"127.0.0.1:{self.temporal_port}",
                "temporal_task_queue": f"bench-{run_id}",
                "gateway_port": self.gateway_port,
            }
        )
        self.gateway = Child(
            "gateway", python_module("moovolt.cli", "gateway"), self.env, workdir
        )
        self.worker = Child(
            "worker", python_module("moovolt.cli", "worker"), self.env, workdir
        )
        self.temporal: DevServer | None = None
        self._database_created = False

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.gateway_port}/ocpp/"

    async def start(self) -> None:
        """Create the database and start Temporal, the worker and the gateway."""
        await ensure_database(self.database_url)
        self._database_created = True
        await upgrade_async(self.database_url)
        engine = make_engine(self.database_url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as db:
                db.add(demo_tariff())
                await db.commit()
        finally:
            await engine.dispose()

        config = DevServerConfig(
            executable=temporal_executable(),
            host="127.0.0.1",
            port=self.temporal_port,
            ui_port=free_port(),
            db_file=self.workdir / "temporal.sqlite",
            namespace="default",
            log_file=self.workdir / "temporal.log",
        )
        self.temporal = DevServer(config)
        await self.temporal.start(self.settings, timeout_s=READY_TIMEOUT_S)
        self.worker.start()
        self.gateway.start()
        await wait_listening(self.gateway, self.gateway_port)

    async def sql(self, query: str, *args: object) -> list[asyncpg.Record]:
        """Run ``query`` on the bench database and return its rows."""
        connection = await asyncpg.connect(admin_dsn(self.database_url, self.database))
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()

    async def stop(self) -> None:
        """Stop the processes and remove the database and the bus names."""
        for child in (self.gateway, self.worker):
            await child.stop()
        if self.temporal is not None:
            await self.temporal.stop()
        if self._database_created:
            connection = await asyncpg.connect(admin_dsn(self.database_url))
            try:
                await connection.execute(
                    f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'
                )
            finally:
                await connection.close()
        await delete_bus(self.amqp_url, Topology(self.prefix))


async def delete_bus(amqp_url: str, topology: Topology, *extra: str) -> None:
    """Delete every queue and exchange a run's topology names, and ``extra``.

    Every name ``topology`` holds is tried both as a queue and as an
    exchange, so that a queue added to the topology later is not left behind.
    """
    names = [
        value
        for key, value in vars(topology).items()
        if key != "prefix" and isinstance(value, str)
    ]
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for name in (*names, *extra):
            for delete in ("queue_delete", "exchange_delete"):
                # A failed delete closes its channel: one channel each.
                channel = await connection.channel()
                with contextlib.suppress(Exception):
                    await getattr(channel, delete)(name)


@contextlib.asynccontextmanager
async def bench_stack(
    base: Settings, overrides: dict[str, str] | None = None, keep_logs: bool = False
) -> AsyncIterator[BenchStack]:
    """Start a bench stack, yield it, and remove it whatever happened."""
    workdir = Path(tempfile.mkdtemp(prefix="moovolt-bench-"))
    stack = BenchStack(base, workdir, overrides)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()
        if keep_logs:
            logger.info("bench logs kept in %s", workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
