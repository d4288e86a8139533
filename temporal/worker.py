"""The SG's Temporal worker: session workflows and their activities."""

from datetime import timedelta

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.worker import Worker

from activities.commands import CommandActivities
from activities.reservations import ReservationActivities
from activities.session import SessionActivities
from activities.webhooks import WebhookActivities
from billing.payments import LedgerProvider
from bus.amqp import BusClient
from moovolt.settings import Settings
from workflows.command import ChargerCommand
from workflows.firmware import FirmwareUpdate, LogUpload
from workflows.reservation import Reservation
from workflows.session import ChargeSession
from workflows.webhook import WebhookDelivery

STICKY_TIMEOUT = timedelta(seconds=3)


def build_worker(
    client: Client,
    settings: Settings,
    db: async_sessionmaker[AsyncSession],
    bus: BusClient,
    http: httpx.AsyncClient,
) -> Worker:
    """Return a worker for ``settings.temporal_task_queue``; run it with ``async with``.

    Args:
        client: a client connected with the pydantic data converter.
        settings: the process's settings.
        db: the process's session factory.
        bus: an open bus client, for commands to chargers.
        http: the HTTP client webhook deliveries go through.

    Returns:
        The worker, not yet running.
    """
    sessions = SessionActivities(db, LedgerProvider(db), events=bus)
    commands = CommandActivities(bus, db)
    reservations = ReservationActivities(db)
    webhooks = WebhookActivities(db, http)
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[
            ChargeSession,
            ChargerCommand,
            WebhookDelivery,
            Reservation,
            FirmwareUpdate,
            LogUpload,
        ],
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
            reservations.find_reservation_use,
            webhooks.deliver,
            webhooks.abandon,
        ],
        # After a worker dies, its sessions' next tasks wait this long for it
        # before any other worker takes them; the SDK default is 10 s, as long
        # as a charger waits for a decision.
        sticky_queue_schedule_to_start_timeout=STICKY_TIMEOUT,
        # Running activities may finish before the worker stops.
        graceful_shutdown_timeout=timedelta(seconds=settings.shutdown_grace_s),
    )
