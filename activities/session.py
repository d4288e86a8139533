"""The session workflow's database activities: verdicts, records, CDR, payment.

Every activity here may run more than once (Temporal retries it after a
crash or a timeout), so each one is written to give the same result when
repeated: updates set values rather than add to them, and the CDR and the
payment are inserted once and read back.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import (
    AUTHORIZE,
    READ_PROGRESS,
    RECORD_ID_TOKEN,
    RECORD_START,
    RECORD_STATE,
    RECORD_STOP,
    TAKE_PAYMENT,
    WRITE_CDR,
    AuthorizeInput,
    CdrInput,
    CdrRecord,
    ReadProgressInput,
    RecordIdTokenInput,
    RecordStartInput,
    RecordStateInput,
    RecordStopInput,
    TakePaymentInput,
    measure,
)
from billing.payments import (
    PaymentDeclined,
    PaymentProvider,
    PaymentReceipt,
    PaymentRequest,
)
from billing.tariff import Cost
from bus.contract import IdTokenInfo, MeterSample, utcnow
from bus.domain import DomainEvent, EventSink
from moovolt import metrics
from store.models import Cdr, MeterValue, Session
from store.tokens import check_id_token
from workflows.types import MeterProgress, SessionState

ENERGY_REGISTER = "Energy.Active.Import.Register"
# States a session does not leave (metrics: sessions by final state).
ENDED = frozenset(
    {
        SessionState.BILLED,
        SessionState.PAYMENT_DECLINED,
        SessionState.REMOTE_START_REJECTED,
        SessionState.NEVER_STARTED,
    }
)


def cdr_id_of(workflow_id: str) -> str:
    """Return the id of the CDR of ``workflow_id``'s session."""
    return "cdr-" + workflow_id.removeprefix("session-")


class SessionActivities:
    """Activities of ``ChargeSession`` that read and write PostgreSQL.

    Each record also goes out as a domain event (``bus.domain``) once it is
    stored; an activity retried after a failed publish writes the same values
    again and publishes the event under the same id.

    Args:
        db: the process's session factory.
        payments: the provider ``take_payment`` charges through.
        events: where domain events go; None publishes none.
    """

    def __init__(
        self,
        db: async_sessionmaker[AsyncSession],
        payments: PaymentProvider,
        events: EventSink | None = None,
    ) -> None:
        self._db = db
        self._payments = payments
        self._events = events

    @activity.defn(name=AUTHORIZE)
    async def authorize(self, input: AuthorizeInput) -> IdTokenInfo:
        """Return the verdict on an id token, as Authorize would."""
        async with self._db() as db:
            return await check_id_token(
                db, input.id_token, input.at, input.id_token_type
            )

    @activity.defn(name=RECORD_START)
    async def record_start(self, input: RecordStartInput) -> None:
        """Write the start of the transaction into the session row."""
        row = await self._update(
            input.session_id,
            state=input.state.value,
            connector_id=input.connector_id,
            meter_start_wh=input.meter_start_wh,
            started_at=input.started_at,
        )
        metrics.SG_SESSION_STATES.labels(input.state.value).inc()
        await self._tell(
            "session.started",
            f"session-{input.session_id}-started",
            row,
            input.model_dump(mode="json", exclude={"session_id"}),
        )

    @activity.defn(name=RECORD_STOP)
    async def record_stop(self, input: RecordStopInput) -> None:
        """Write the stop of the transaction into the session row."""
        row = await self._update(
            input.session_id,
            state=SessionState.STOPPED.value,
            meter_stop_wh=input.meter_stop_wh,
            energy_wh=input.energy_wh,
            stopped_at=input.stopped_at,
            stop_reason=input.reason,
        )
        metrics.SG_SESSION_STATES.labels(SessionState.STOPPED.value).inc()
        await self._tell(
            "session.stopped",
            f"session-{input.session_id}-stopped",
            row,
            input.model_dump(mode="json", exclude={"session_id"}),
        )

    @activity.defn(name=RECORD_STATE)
    async def record_state(self, input: RecordStateInput) -> None:
        """Keep the session row's ``state`` in step with the workflow."""
        row = await self._update(input.session_id, state=input.state.value)
        metrics.SG_SESSION_STATES.labels(input.state.value).inc()
        if input.state in ENDED:
            metrics.SG_SESSIONS_ENDED.labels(input.state.value).inc()
        await self._tell(
            "session.state",
            f"session-{input.session_id}-{input.state.value}",
            row,
            {"state": input.state.value},
        )

    @activity.defn(name=RECORD_ID_TOKEN)
    async def record_id_token(self, input: RecordIdTokenInput) -> None:
        """Write a token presented after the start, and its verdict's state."""
        await self._update(
            input.session_id, id_token=input.id_token, state=input.state.value
        )
        metrics.SG_SESSION_STATES.labels(input.state.value).inc()

    @activity.defn(name=READ_PROGRESS)
    async def read_progress(self, input: ReadProgressInput) -> MeterProgress | None:
        """Return the transaction's newest energy register and sample time.

        Returns:
            None when no sample of the transaction has been stored yet.
        """
        of_tx = (
            col(MeterValue.charger_id) == input.charger_id,
            col(MeterValue.transaction_id) == input.transaction_id,
        )
        async with self._db() as db:
            newest = await db.exec(
                select(func.max(MeterValue.sampled_at)).where(*of_tx)
            )
            sampled_at: datetime | None = newest.one()
            if sampled_at is None:
                return None

            registers = await db.exec(
                select(MeterValue)
                .where(
                    *of_tx,
                    col(MeterValue.measurand) == ENERGY_REGISTER,
                    col(MeterValue.phase) == "",
                )
                .order_by(col(MeterValue.sampled_at).desc())
                .limit(1)
            )
            register = registers.first()

        energy: Decimal | None = None
        if register is not None:
            energy = MeterSample(
                timestamp=register.sampled_at,
                value=register.value,
                unit=register.unit,
            ).energy_wh()
        return MeterProgress(energy_register_wh=energy, sampled_at=sampled_at)

    @activity.defn(name=WRITE_CDR)
    async def write_cdr(self, input: CdrInput) -> CdrRecord:
        """Write the session's CDR once and return the stored one.

        A repeat (a retried activity, a replayed workflow) inserts nothing
        and returns what the first call stored.
        """
        figures = measure(
            input.tariff,
            input.meter_start_wh,
            input.meter_stop_wh,
            input.started_at,
            input.stopped_at,
        )
        cost = figures.cost
        async with self._db() as db:
            await db.exec(
                insert(Cdr)
                .values(
                    id=cdr_id_of(input.workflow_id),
                    session_id=input.session_id,
                    charger_id=input.charger_id,
                    connector_id=input.connector_id,
                    transaction_id=input.transaction_id,
                    id_token=input.id_token,
                    started_at=input.started_at,
                    stopped_at=input.stopped_at,
                    meter_start_wh=input.meter_start_wh,
                    meter_stop_wh=input.meter_stop_wh,
                    energy_wh=figures.energy_wh,
                    duration_s=figures.duration_s,
                    currency=cost.currency,
                    tariff=input.tariff.model_dump(mode="json"),
                    cost_energy=cost.energy,
                    cost_time=cost.time,
                    cost_session=cost.session,
                    total_excl_vat=cost.total_excl_vat,
                    vat=cost.vat,
                    total_incl_vat=cost.total_incl_vat,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing(index_elements=["session_id"])
            )
            await db.commit()
            found = await db.exec(
                select(Cdr).where(col(Cdr.session_id) == input.session_id)
            )
            row = found.one()

        activity.logger.info("CDR %s written", row.id)
        record = CdrRecord(
            id=row.id,
            energy_wh=row.energy_wh,
            duration_s=row.duration_s,
            cost=Cost(
                currency=row.currency,
                energy=row.cost_energy,
                time=row.cost_time,
                session=row.cost_session,
                total_excl_vat=row.total_excl_vat,
                vat=row.vat,
                total_incl_vat=row.total_incl_vat,
            ),
        )
        await self._publish(
            DomainEvent(
                id=row.id,
                type="cdr.created",
                charger_id=row.charger_id,
                session_id=row.session_id,
                data={
                    "transaction_id": row.transaction_id,
                    "id_token": row.id_token,
                    "started_at": row.started_at.isoformat(),
                    "stopped_at": row.stopped_at.isoformat(),
                    **record.model_dump(mode="json"),
                },
            )
        )
        return record

    @activity.defn(name=TAKE_PAYMENT)
    async def take_payment(self, input: TakePaymentInput) -> PaymentReceipt:
        """Charge the CDR's total through the payment provider, once.

        Raises:
            ApplicationError: ``PaymentDeclined`` (non-retryable) when the
                provider refuses for good; any other failure is retried.
        """
        async with self._db() as db:
            cdr = await db.get(Cdr, input.cdr_id)
        if cdr is None:
            raise ApplicationError(
                f"no CDR {input.cdr_id}", type="CdrMissing", non_retryable=True
            )

        request = PaymentRequest(
            idempotency_key=input.idempotency_key,
            cdr_id=cdr.id,
            id_token=cdr.id_token,
            amount=cdr.total_incl_vat,
            currency=cdr.currency,
        )
        try:
            receipt = await self._payments.charge(request)
        except PaymentDeclined as exc:
            await self._publish(
                DomainEvent(
                    id=input.idempotency_key,
                    type="payment.declined",
                    charger_id=cdr.charger_id,
                    session_id=cdr.session_id,
                    data={"cdr_id": cdr.id, "reason": str(exc)},
                )
            )
            raise ApplicationError(
                str(exc) or "payment declined",
                type="PaymentDeclined",
                non_retryable=True,
            ) from exc
        activity.logger.info(
            "payment %s for CDR %s: %s", receipt.status, cdr.id, receipt.amount
        )
        await self._publish(
            DomainEvent(
                id=input.idempotency_key,
                type=f"payment.{receipt.status.value}",
                charger_id=cdr.charger_id,
                session_id=cdr.session_id,
                data=receipt.model_dump(mode="json"),
            )
        )
        return receipt

    async def _update(self, session_id: int, **values: object) -> Session | None:
        """Update the session row; return it as it is now."""
        async with self._db() as db:
            await db.exec(
                update(Session).where(col(Session.id) == session_id).values(**values)
            )
            await db.commit()
            return await db.get(Session, session_id)

    async def _tell(
        self, type: str, id: str, row: Session | None, data: dict[str, Any]
    ) -> None:
        """Publish a domain event about the session ``row``."""
        if row is None:
            return
        await self._publish(
            DomainEvent(
                id=id,
                type=type,
                charger_id=row.charger_id,
                session_id=row.id,
                data={"transaction_id": row.transaction_id, **data},
            )
        )

    async def _publish(self, event: DomainEvent) -> None:
        if self._events is not None:
            await self._events.publish_event(event)
