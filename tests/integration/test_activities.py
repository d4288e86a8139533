"""The SG's activities against a real PostgreSQL and a real RabbitMQ.

Each run migrates a throwaway database of its own and drops it at the end.
The database activities run in Temporal's ``ActivityEnvironment``; the
command round trip (``send_command`` -> gateway -> ``CommandResultListener``
-> async completion) runs on the time-skipping test server with a stand-in
gateway that answers every command.
"""

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.commands import CommandActivities
from activities.results import CommandResultListener
from activities.session import SessionActivities, cdr_id_of
from activities.types import (
    AuthorizeInput,
    CdrInput,
    ReadProgressInput,
    RecordStartInput,
    RecordStopInput,
    TakePaymentInput,
)
from billing.payments import LedgerProvider, PaymentStatus, payment_key
from billing.tariff import TariffSnapshot, price
from bus.amqp import BusClient
from bus.contract import (
    AuthorizationStatus,
    CommandEnvelope,
    CommandOutcome,
    CommandResult,
    RemoteStop,
    Topology,
)
from store.db import make_engine, make_sessionmaker
from store.migrate import ensure_database, upgrade_async
from tests.conftest import VENV_BIN
from workflows import calls
from workflows.types import SessionState

pytestmark = pytest.mark.integration

PG = "postgres@127.0.0.1:5432"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
TARIFF = TariffSnapshot(
    name="standard",
    currency="EUR",
    price_per_kwh=Decimal("0.30"),
    price_per_minute=Decimal("0.05"),
    price_per_session=Decimal("1.00"),
    vat_percent=Decimal("23"),
)
FREE = TariffSnapshot(name="free", currency="EUR")
T0 = datetime(2025, 3, 1, 8, tzinfo=UTC)


@dataclass
class Db:
    url: str
    sessions: async_sessionmaker[AsyncSession]
    conn: asyncpg.Connection


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Db]:
    name = f"moovolt_t_{uuid.uuid4().hex[:8]}"
    url = f"postgresql+asyncpg://{PG}/{name}"
    await ensure_database(url)
    engine = make_engine(url, pool_size=4)
    conn = await asyncpg.connect(f"postgresql://{PG}/{name}")
    try:
        await upgrade_async(url)
        await conn.execute(
            "INSERT INTO charger (id, registration_status, connected, created_at)"
            " VALUES ('CP-1', 'Accepted', false, now())"
        )
        await conn.execute(
            "INSERT INTO id_token (token, status, owner, created_at)"
            " VALUES ('TAG-OK', 'Accepted', 'fleet-7', now()),"
            " ('TAG-OLD', 'Accepted', NULL, now())"
        )
        await conn.execute(
            "UPDATE id_token SET expires_at = $1 WHERE token = 'TAG-OLD'",
            T0 - timedelta(days=1),
        )
        yield Db(url, make_sessionmaker(engine), conn)
    finally:
        await conn.close()
        await engine.dispose()
        admin = await asyncpg.connect(f"postgresql://{PG}/postgres")
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
def acts(db: Db) -> SessionActivities:
    return SessionActivities(db.sessions, LedgerProvider(db.sessions))


async def new_session(db: Db, token: str = "TAG-OK") -> tuple[int, str]:
    """Insert a session row; return its id and workflow id."""
    session_id: int = await db.conn.fetchval(
        "SELECT nextval(pg_get_serial_sequence('session', 'id'))"
    )
    workflow_id = f"session-CP-1-{session_id}"
    await db.conn.execute(
        "INSERT INTO session (id, charger_id, transaction_id, workflow_id, id_token,"
        " origin, state, created_at)"
        " VALUES ($1, 'CP-1', $2, $3, $4, 'charger', 'Authorizing', now())",
        session_id,
        str(session_id),
        workflow_id,
        token,
    )
    return session_id, workflow_id


def cdr_input(
    session_id: int,
    workflow_id: str,
    *,
    stop: str = "13500",
    tariff: TariffSnapshot = TARIFF,
    token: str = "TAG-OK",
) -> CdrInput:
    return CdrInput(
        session_id=session_id,
        workflow_id=workflow_id,
        charger_id="CP-1",
        connector_id=1,
        transaction_id=str(session_id),
        id_token=token,
        tariff=tariff,
        meter_start_wh=Decimal(1000),
        meter_stop_wh=Decimal(stop),
        started_at=T0,
        stopped_at=T0 + timedelta(minutes=30),
    )


async def test_authorize_reads_the_token(acts: SessionActivities) -> None:
    run = ActivityEnvironment().run
    ok = await run(acts.authorize, AuthorizeInput(id_token="TAG-OK", at=T0))
    old = await run(acts.authorize, AuthorizeInput(id_token="TAG-OLD", at=T0))
    unknown = await run(acts.authorize, AuthorizeInput(id_token="NOPE", at=T0))

    assert ok.status is AuthorizationStatus.ACCEPTED
    assert old.status is AuthorizationStatus.EXPIRED
    assert unknown.status is AuthorizationStatus.INVALID


async def test_records_keep_the_row_in_step(db: Db, acts: SessionActivities) -> None:
    session_id, _ = await new_session(db)
    run = ActivityEnvironment().run
    start = RecordStartInput(
        session_id=session_id,
        state=SessionState.CHARGING,
        connector_id=2,
        meter_start_wh=Decimal(1000),
        started_at=T0,
    )
    await run(acts.record_start, start)
    await run(acts.record_start, start)
    stop = RecordStopInput(
        session_id=session_id,
        meter_stop_wh=Decimal(4000),
        energy_wh=Decimal(3000),
        stopped_at=T0 + timedelta(hours=1),
        reason="EVDisconnected",
    )
    await run(acts.record_stop, stop)

    row = await db.conn.fetchrow("SELECT * FROM session WHERE id = $1", session_id)
    assert row["state"] == SessionState.STOPPED.value
    assert row["connector_id"] == 2
    assert row["meter_start_wh"] == Decimal(1000)
    assert row["meter_stop_wh"] == Decimal(4000)
    assert row["energy_wh"] == Decimal(3000)
    assert row["started_at"] == T0
    assert row["stop_reason"] == "EVDisconnected"


async def test_read_progress_finds_the_newest_register(
    db: Db, acts: SessionActivities
) -> None:
    session_id, _ = await new_session(db)
    tx = str(session_id)
    rows = [
        (T0 + timedelta(minutes=1), "Energy.Active.Import.Register", "", "kWh", "1.5"),
        (T0 + timedelta(minutes=2), "Energy.Active.Import.Register", "", "kWh", "2.5"),
        (T0 + timedelta(minutes=2), "Energy.Active.Import.Register", "L1", "Wh", "9"),
        (T0 + timedelta(minutes=3), "Power.Active.Import", "", "W", "7000"),
    ]
    for at, measurand, phase, unit, value in rows:
        await db.conn.execute(
            "INSERT INTO meter_value (charger_id, connector_id, transaction_id,"
            " sampled_at, measurand, phase, location, context, unit, value)"
            " VALUES ('CP-1', 1, $1, $2, $3, $4, '', '', $5, $6)",
            tx,
            at,
            measurand,
            phase,
            unit,
            Decimal(value),
        )
    run = ActivityEnvironment().run

    progress = await run(
        acts.read_progress, ReadProgressInput(charger_id="CP-1", transaction_id=tx)
    )
    nothing = await run(
        acts.read_progress, ReadProgressInput(charger_id="CP-1", transaction_id="x")
    )

    assert progress is not None
    assert progress.energy_register_wh == Decimal(2500)
    assert progress.sampled_at == T0 + timedelta(minutes=3)
    assert nothing is None


async def test_write_cdr_is_exactly_once(db: Db, acts: SessionActivities) -> None:
    session_id, workflow_id = await new_session(db)
    run = ActivityEnvironment().run

    first = await run(acts.write_cdr, cdr_input(session_id, workflow_id))
    # A retry, even one that saw other figures, finds the first CDR.
    repeats = await asyncio.gather(
        *(
            run(acts.write_cdr, cdr_input(session_id, workflow_id, stop="99999"))
            for _ in range(4)
        )
    )

    assert all(repeat == first for repeat in repeats)
    assert first.id == cdr_id_of(workflow_id) == f"cdr-CP-1-{session_id}"
    assert first.energy_wh == Decimal(12500)
    assert first.duration_s == 1800
    assert first.cost == price(TARIFF, Decimal(12500), 1800)
    count = await db.conn.fetchval(
        "SELECT count(*) FROM cdr WHERE session_id = $1", session_id
    )
    assert count == 1
    stored = await db.conn.fetchrow("SELECT * FROM cdr WHERE id = $1", first.id)
    assert stored["total_incl_vat"] == Decimal("7.69")
    assert stored["tariff"] is not None


async def test_take_payment_is_idempotent(db: Db, acts: SessionActivities) -> None:
    session_id, workflow_id = await new_session(db)
    run = ActivityEnvironment().run
    cdr = await run(acts.write_cdr, cdr_input(session_id, workflow_id))
    request = TakePaymentInput(cdr_id=cdr.id, idempotency_key=payment_key(workflow_id))

    first = await run(acts.take_payment, request)
    repeats = await asyncio.gather(*(run(acts.take_payment, request) for _ in range(4)))

    assert all(repeat == first for repeat in repeats)
    assert first.status is PaymentStatus.CAPTURED
    assert first.amount == Decimal("7.69")
    assert first.provider == "ledger"
    assert first.provider_reference == "owner:fleet-7"
    rows = await db.conn.fetch(
        "SELECT * FROM payment WHERE idempotency_key = $1", f"payment-{workflow_id}"
    )
    assert len(rows) == 1
    assert rows[0]["cdr_id"] == cdr.id


async def test_zero_cost_session_is_waived(db: Db, acts: SessionActivities) -> None:
    session_id, workflow_id = await new_session(db, token="TAG-OLD")
    run = ActivityEnvironment().run
    cdr = await run(
        acts.write_cdr,
        cdr_input(session_id, workflow_id, tariff=FREE, token="TAG-OLD"),
    )

    receipt = await run(
        acts.take_payment,
        TakePaymentInput(cdr_id=cdr.id, idempotency_key=payment_key(workflow_id)),
    )

    assert cdr.cost.total_incl_vat == Decimal(0)
    assert receipt.status is PaymentStatus.WAIVED
    assert receipt.amount == Decimal(0)
    assert receipt.provider_reference == "owner:TAG-OLD"


async def test_payment_for_a_missing_cdr_is_not_retried(
    acts: SessionActivities,
) -> None:
    with pytest.raises(ApplicationError) as missing:
        await ActivityEnvironment().run(
            acts.take_payment,
            TakePaymentInput(cdr_id="cdr-nope", idempotency_key="payment-nope"),
        )

    assert missing.value.type == "CdrMissing"
    assert missing.value.non_retryable


# -- Commands: send_command and the result listener ----------------------------


@workflow.defn(name="SendRemoteStop")
class SendRemoteStop:
    """Sends one RemoteStop the way ChargeSession does, returns the answer."""

    @workflow.run
    async def run(self, charger_id: str) -> CommandResult:
        return await calls.send_command(
            charger_id, RemoteStop(transaction_id="42"), "tests", calls.COMMAND_RETRY
        )


async def answer_commands(bus: BusClient, charger_id: str) -> None:
    """Play a gateway holding ``charger_id`` that accepts every command.

    It publishes every answer twice, as a gateway that crashed between
    publishing and acking would.
    """
    queue = await bus.channel.declare_queue(exclusive=True)
    await queue.bind(bus.commands_exchange, Topology.charger_key(charger_id))
    async with queue.iterator() as messages:
        async for message in messages:
            async with message.process():
                envelope = CommandEnvelope.model_validate_json(message.body)
                result = CommandResult(
                    command_id=envelope.command_id,
                    charger_id=envelope.charger_id,
                    task_token=envelope.task_token,
                    outcome=CommandOutcome.ANSWERED,
                    status="Accepted",
                    payload={"status": "Accepted"},
                )
                # Twice: the repeat finds its activity completed already.
                for _ in range(2):
                    await bus.publish_to_queue(
                        bus.topology.results, result.model_dump_json().encode()
                    )


@pytest.fixture(scope="module")
async def bus() -> AsyncIterator[BusClient]:
    client = BusClient(AMQP, Topology(f"t-{uuid.uuid4().hex[:8]}"))
    await client.open()
    yield client
    topology = client.topology
    for queue in topology.durable_queues:
        await client.channel.queue_delete(queue)
    await client.channel.exchange_delete(topology.commands_exchange)
    await client.close()


@pytest.fixture(scope="module")
async def temporal() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=pydantic_data_converter,
        test_server_existing_path=str(VENV_BIN / "temporal-test-server"),
    )
    yield env
    await env.shutdown()


async def test_command_round_trip(
    db: Db,
    bus: BusClient,
    temporal: WorkflowEnvironment,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="activities.results")
    task_queue = f"commands-{uuid.uuid4().hex[:8]}"
    listener = CommandResultListener(temporal.client, bus, db.sessions)
    commands = CommandActivities(bus, db.sessions)
    background = [
        asyncio.create_task(listener.run()),
        asyncio.create_task(answer_commands(bus, "CP-1")),
    ]
    try:
        async with Worker(
            temporal.client,
            task_queue=task_queue,
            workflows=[SendRemoteStop],
            activities=[commands.send_command],
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            # The charger's answer comes in real time: no skipping past it.
            with temporal.auto_time_skipping_disabled():
                online = await temporal.client.execute_workflow(
                    SendRemoteStop.run,
                    "CP-1",
                    id=f"send-{uuid.uuid4().hex}",
                    task_queue=task_queue,
                )
                with pytest.raises(WorkflowFailureError) as failed:
                    await temporal.client.execute_workflow(
                        SendRemoteStop.run,
                        "CP-OFFLINE",
                        id=f"send-{uuid.uuid4().hex}",
                        task_queue=task_queue,
                    )
        # The repeated answer is dropped quietly, and the listener lives on.
        for _ in range(100):
            if any("no longer waiting" in r.message for r in caplog.records):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the repeated answer was not settled")
        assert not any(task.done() for task in background)
    finally:
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)

    assert online.accepted
    assert online.payload == {"status": "Accepted"}
    audit = await db.conn.fetchrow(
        "SELECT * FROM command_audit WHERE id = $1", online.command_id
    )
    assert (audit["command"], audit["requested_by"]) == ("remote_stop", "tests")
    assert (audit["outcome"], audit["status"]) == ("answered", "Accepted")

    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "ChargerOffline"
    offline = await db.conn.fetchrow(
        "SELECT * FROM command_audit WHERE charger_id = 'CP-OFFLINE'"
    )
    assert offline["outcome"] == "offline"
