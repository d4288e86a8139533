"""The SG worker process: Temporal worker, ingress and command results."""

import asyncio
import logging

from temporalio.client import Client

from activities.results import CommandResultListener
from bus.amqp import BusClient
from bus.contract import Topology
from ingress.service import Ingress
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from temporal.client import connect
from temporal.worker import build_worker

logger = logging.getLogger(__name__)

CONNECT_RETRY_S = 1.0


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


async def run_worker(settings: Settings) -> None:
    """Run the SG worker until cancelled."""
    engine = make_engine(settings.database_url)
    db = make_sessionmaker(engine)
    bus = BusClient(settings.amqp_url, Topology(settings.bus_prefix))
    try:
        await bus.open()
        client = await connect_temporal(settings)
        listener = CommandResultListener(client, bus, db)
        ingress = Ingress(settings, db, bus, client)
        async with build_worker(client, settings, db, bus):
            logger.info(
                "SG worker ready on task queue %s", settings.temporal_task_queue
            )
            async with asyncio.TaskGroup() as group:
                group.create_task(ingress.run())
                group.create_task(listener.run())
    finally:
        await bus.close()
        await engine.dispose()
