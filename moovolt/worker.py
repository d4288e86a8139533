"""The SG worker process: Temporal worker, ingress and command results.

It answers ``/healthz``, ``/readyz`` and ``/metrics`` on
``MOOVOLT_WORKER_HEALTH_PORT`` from its first moment. Cancelled (SIGTERM), it
drains in order: the ingress stops consuming and finishes the decisions and
event batches it took (``ingress.service``), the command-result listener
stops, then the Temporal worker shuts down (it served the workflows those
decisions needed), and the bus and the database close last.
"""

import asyncio
import logging
from datetime import timedelta

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

from activities.results import CommandResultListener
from bus.amqp import BusClient
from bus.contract import Topology
from ingress.service import Ingress
from ingress.webhooks import WebhookDispatcher
from moovolt import metrics
from moovolt.probes import CHECK_TIMEOUT_S, OK, ProbeServer, Readiness, bus_state
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from temporal.client import connect
from temporal.worker import build_worker

logger = logging.getLogger(__name__)

CONNECT_RETRY_S = 1.0
# One webhook delivery try gets this long (the workflow's try timeout is 30 s).
WEBHOOK_TIMEOUT_S = 20.0


async def connect_temporal(settings: Settings, *, attempts: int = 60) -> Client:
    """Connect to Temporal, waiting for it while it boots."""
    for attempt in range(1, attempts + 1):
        try:
            return await connect(settings)
        except RuntimeError as exc:
            if attempt == attempts:
                raise
            logger.info("Temporal not reachable yet (%s), retrying", exc)
            await asyncio.sleep(CONNECT_RETRY_S)
    raise AssertionError("unreachable")


class WorkerReadiness:
    """What the worker's ``/readyz`` checks: bus, Temporal, database, ingress.

    Args:
        bus: the worker's bus client.
        engine: the worker's database engine.
    """

    def __init__(self, bus: BusClient, engine: AsyncEngine) -> None:
        self.bus = bus
        self.engine = engine
        self.temporal: Client | None = None
        self.ingress: Ingress | None = None
        self.readiness = Readiness(
            {
                "bus": self._bus,
                "temporal": self._temporal,
                "database": self._database,
                "ingress": self._ingress,
            }
        )

    async def _bus(self) -> str:
        return bus_state(self.bus)

    async def _temporal(self) -> str:
        if self.temporal is None:
            return "connecting"
        serving = await self.temporal.service_client.check_health(
            timeout=timedelta(seconds=CHECK_TIMEOUT_S)
        )
        return OK if serving else "down"

    async def _database(self) -> str:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return OK

    async def _ingress(self) -> str:
        return "starting" if self.ingress is None else self.ingress.state


async def run_worker(settings: Settings) -> None:
    """Run the SG worker until cancelled, then drain (see the module).

    Args:
        settings: the worker's settings.

    Raises:
        OSError: the probe port cannot be bound.
    """
    engine = make_engine(settings.database_url)
    db = make_sessionmaker(engine)
    bus = BusClient(settings.amqp_url, Topology(settings.bus_prefix))
    health = WorkerReadiness(bus, engine)
    probes: ProbeServer | None = None
    try:
        if settings.worker_health_port:
            probes = ProbeServer(
                settings.worker_health_host,
                settings.worker_health_port,
                health.readiness,
                metrics.SG,
            )
            await probes.start()
        await bus.open()
        client = await connect_temporal(settings)
        health.temporal = client
        listener = CommandResultListener(client, bus, db)
        ingress = Ingress(settings, db, bus, client)
        health.ingress = ingress
        webhooks = WebhookDispatcher(settings, db, bus, client)
        async with (
            httpx.AsyncClient(timeout=WEBHOOK_TIMEOUT_S) as http,
            build_worker(client, settings, db, bus, http),
        ):
            logger.info(
                "SG worker ready on task queue %s", settings.temporal_task_queue
            )
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(ingress.run())
                    group.create_task(listener.run())
                    group.create_task(webhooks.run())
            finally:
                logger.info("shutting the Temporal worker down")
    finally:
        await bus.close()
        await engine.dispose()
        if probes is not None:
            await probes.close()
