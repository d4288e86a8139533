"""The SG's Temporal worker: session workflows and their activities."""

from datetime import timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.worker import Worker

from activities.commands import CommandActivities
from activities.session import SessionActivities
from billing.payments import LedgerProvider
from bus.amqp import BusClient
from moovolt.settings import Settings
from workflows.command import ChargerCommand
from workflows.session import ChargeSession

STICKY_TIMEOUT = timedelta(seconds=3)


def build_worker(
    client: Client,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    bus: BusClient,
) -> Worker:
    """Return a worker for ``settings.temporal_task_queue``; run it with ``async with``.

    Args:
        client: a client connected with the pydantic data converter.
        settings: the process's settings.
        db: the process's session factory.
        bus: an open bus client, for commands to chargers.

    Returns:
        The worker, not yet running.
    """
    sessions = SessionActivities(db, LedgerProvider(db))
    commands = CommandActivities(bus, db)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[ChargeSession, ChargerCommand],
        activities=[
            sessions.authorize,
            sessions.record_start,
            sessions.record_stop,
            sessions.record_state,
            sessions.record_id_token,
            sessions.read_progress,
            sessions.write_cdr,
            sessions.take_payment,
            commands.send_command,
        ],
        # After a worker dies, its sessions' next tasks wait this long for it
        # before any other worker takes them; the SDK default is 10 s, as long
        # as a charger waits for a decision.
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
    )
