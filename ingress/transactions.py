"""Charger transactions: each one driven through its ChargeSession workflow.

Starts, 2.0.1 Updated events and stops open (or find) the session row, store
the meter values they carry, and hand the rest to the workflow as updates
whose ids derive from the charger's message, so a repeat is applied once.
2.0.1 events may come in any order: one whose start has not been seen opens
the session without it.
"""

import logging
from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowQueryFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError

from bus.contract import (
    EventEnvelope,
    IdTokenInfo,
    MeterSample,
    OcppVersion,
    StartDecision,
    StopDecision,
    TransactionDecision,
    TransactionEnded,
    TransactionStarted,
    TransactionUpdated,
    utcnow,
)
from ingress.events import insert_meter_values, meter_rows
from moovolt.settings import Settings
from store.models import Cdr, Session, UnmatchedStop
from store.readings import register_bounds
from store.sessions import find_session, open_charger_session, session_input
from store.tokens import check_id_token
from workflows.types import (
    CHARGE_SESSION,
    TRANSACTION_ENDED,
    TRANSACTION_STARTED,
    TRANSACTION_UPDATED,
    VIEW,
    SessionState,
    SessionView,
    TransactionEndedInput,
    TransactionStartedInput,
    TransactionUpdatedInput,
    TransactionVerdict,
    session_search_attributes,
)

logger = logging.getLogger(__name__)

# States after which the charger's transaction is over for the workflow.
_CLOSED = {
    SessionState.STOPPED,
    SessionState.BILLED,
    SessionState.NEVER_STARTED,
    SessionState.REMOTE_START_REJECTED,
}


class Transactions:
    """Decide on transaction events; one instance per SG process."""

    def __init__(
        self,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        temporal: Client,
    ) -> None:
        self.settings = settings
        self.db = db
        self.temporal = temporal

    async def started(
        self, envelope: EventEnvelope, event: TransactionStarted
    ) -> StartDecision:
        """Open (or find again) the session and let its workflow authorize it."""
        async with self.db() as db:
            row = await self._open(db, envelope, event)
            await self._store_samples(db, envelope, row, event)
            if _closed(row) and not _awaits_start(row):
                # A repeat of a start whose session is already over.
                info = await self._verdict_here(db, event.id_token, event.id_token_type)
                await db.commit()
                assert row.transaction_id is not None
                return StartDecision(
                    transaction_id=row.transaction_id, id_token_info=info
                )
            await db.commit()

        assert row.transaction_id is not None
        verdict: IdTokenInfo | None = await self._update(
            row,
            TRANSACTION_STARTED,
            TransactionStartedInput(
                connector_id=event.connector_id,
                id_token=event.id_token,
                meter_start_wh=event.meter_start_wh,
                timestamp=event.timestamp,
                transaction_id=event.transaction_id,
                id_token_type=event.id_token_type,
            ),
            update_id=f"start-{row.start_key}",
            result_type=IdTokenInfo | None,
        )
        return StartDecision(transaction_id=row.transaction_id, id_token_info=verdict)

    async def updated(
        self, envelope: EventEnvelope, event: TransactionUpdated
    ) -> TransactionDecision:
        """Store a 2.0.1 Updated event's readings; let the workflow judge it."""
        async with self.db() as db:
            row = await find_session(db, envelope.charger_id, event.transaction_id)
            if row is None:
                # Its start is late or lost: the session opens without it.
                row = await self._open(db, envelope, _implied_start(event))
            await self._store_samples(db, envelope, row, event)
            if _closed(row):
                info = await self._verdict_here(db, event.id_token, event.id_token_type)
                await db.commit()
                return TransactionDecision(id_token_info=info)
            await db.commit()

        newest = _newest_register(event.samples)
        verdict: TransactionVerdict = await self._update(
            row,
            TRANSACTION_UPDATED,
            TransactionUpdatedInput(
                timestamp=event.timestamp,
                id_token=event.id_token,
                id_token_type=event.id_token_type,
                charging_state=event.charging_state,
                register_wh=None if newest is None else newest.energy_wh(),
                sampled_at=None if newest is None else newest.timestamp,
            ),
            update_id=f"updated-{row.start_key}-{_event_key(event)}",
            result_type=TransactionVerdict,
        )
        return TransactionDecision(
            id_token_info=verdict.id_token_info, total_cost=verdict.total_cost
        )

    async def ended(
        self, envelope: EventEnvelope, event: TransactionEnded
    ) -> StopDecision:
        """Store the stop's meter values and hand the stop to the workflow."""
        v201 = envelope.ocpp_version is OcppVersion.V201
        async with self.db() as db:
            row = await find_session(db, envelope.charger_id, event.transaction_id)
            if row is None and v201:
                # 2.0.1 names its transactions: a stop whose start is late or
                # lost still belongs to a session of its own.
                row = await self._open(db, envelope, _implied_start(event))
            await self._store_samples(db, envelope, row, event)
            if row is None:
                await self._record_unmatched(db, envelope, event)
            # With no workflow to ask, the verdict on the stop's token is ours.
            answer_here = row is None or row.stopped_at is not None or _closed(row)
            bounds = None
            if answer_here:
                info = await self._verdict_here(db, event.id_token, event.id_token_type)
                total = await _billed_total(db, row) if v201 and row else None
            else:
                bounds = await register_bounds(
                    db, envelope.charger_id, event.transaction_id
                )
            await db.commit()

        if answer_here:
            return StopDecision(id_token_info=info, total_cost=total)
        assert row is not None

        meter_stop = event.meter_stop_wh
        if meter_stop is None and bounds is not None:
            meter_stop = bounds.last_wh
        verdict: IdTokenInfo | None = await self._update(
            row,
            TRANSACTION_ENDED,
            TransactionEndedInput(
                meter_stop_wh=meter_stop,
                timestamp=event.timestamp,
                id_token=event.id_token,
                reason=event.reason,
                id_token_type=event.id_token_type,
                first_register_wh=None if bounds is None else bounds.first_wh,
                first_sample_at=None if bounds is None else bounds.first_at,
            ),
            update_id=f"stop-{row.transaction_id}",
            result_type=IdTokenInfo | None,
        )
        total = await self._running_total(row) if v201 else None
        return StopDecision(id_token_info=verdict, total_cost=total)

    async def _open(
        self, db: AsyncSession, envelope: EventEnvelope, event: TransactionStarted
    ) -> Session:
        return await open_charger_session(
            db,
            charger_id=envelope.charger_id,
            event=event,
            claim_window=timedelta(seconds=self.settings.remote_start_timeout_s),
        )

    async def _store_samples(
        self,
        db: AsyncSession,
        envelope: EventEnvelope,
        row: Session | None,
        event: TransactionStarted | TransactionUpdated | TransactionEnded,
    ) -> None:
        """Store the meter values a transaction event carried, each once."""
        connector_id = event.connector_id
        if connector_id is None and row is not None:
            connector_id = row.connector_id
        transaction_id = event.transaction_id
        if transaction_id is None and row is not None:
            transaction_id = row.transaction_id
        rows = meter_rows(
            envelope.charger_id, connector_id or 0, transaction_id, event.samples
        )
        if rows:
            await db.exec(insert_meter_values(rows))

    async def _verdict_here(
        self, db: AsyncSession, id_token: str | None, id_token_type: str | None
    ) -> IdTokenInfo | None:
        if not id_token and id_token_type is None:
            return None
        return await check_id_token(db, id_token or "", utcnow(), id_token_type)

    async def _update(
        self,
        row: Session,
        update: str,
        arg: Any,
        *,
        update_id: str,
        result_type: Any,
    ) -> Any:
        """Run ``update`` on the session's workflow, starting it if need be.

        The update id is derived from the charger's message, so a repeat of
        the message is the same update and is applied once.
        """
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            CHARGE_SESSION,
            session_input(row, self.settings),
            id=row.workflow_id,
            task_queue=self.settings.temporal_task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # A finished session must never be started again by a late repeat.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=session_search_attributes(
                row.charger_id, row.id_token, row.state
            ),
        )
        return await self.temporal.execute_update_with_start_workflow(
            update,
            arg,
            start_workflow_operation=start,
            id=update_id,
            result_type=result_type,
        )

    async def _running_total(self, row: Session) -> Decimal | None:
        """Ask the workflow for the session's cost; None if it cannot say."""
        handle = self.temporal.get_workflow_handle(row.workflow_id)
        try:
            view: SessionView = await handle.query(VIEW, result_type=SessionView)
        except (RPCError, WorkflowQueryFailedError) as exc:
            logger.warning(
                "cost of session %s not known: %s",
                row.id,
                exc,
                extra={"charger_id": row.charger_id},
            )
            return None
        return view.cost.total_incl_vat

    async def _record_unmatched(
        self, db: AsyncSession, envelope: EventEnvelope, event: TransactionEnded
    ) -> None:
        logger.warning(
            "StopTransaction for unknown transaction %s of %s, recorded",
            event.transaction_id,
            envelope.charger_id,
            extra={"charger_id": envelope.charger_id},
        )
        await db.exec(
            insert(UnmatchedStop)
            .values(
                charger_id=envelope.charger_id,
                transaction_id=event.transaction_id,
                id_token=event.id_token,
                meter_stop_wh=event.meter_stop_wh,
                stopped_at=event.timestamp,
                reason=event.reason,
                received_at=envelope.received_at,
            )
            .on_conflict_do_nothing()
        )


def _closed(row: Session) -> bool:
    return SessionState(row.state) in _CLOSED


def _awaits_start(row: Session) -> bool:
    """Whether a stopped session still waits for its start, queued behind."""
    return row.state == SessionState.STOPPED and row.started_at is None


def _implied_start(event: TransactionUpdated | TransactionEnded) -> TransactionStarted:
    """The start a 2.0.1 event implies when its own start has not been seen."""
    return TransactionStarted(
        connector_id=event.connector_id or 0,
        evse_connector_id=event.evse_connector_id,
        id_token=event.id_token,
        id_token_type=event.id_token_type,
        meter_start_wh=None,
        timestamp=event.timestamp,
        transaction_id=event.transaction_id,
        remote_start_id=(
            event.remote_start_id if isinstance(event, TransactionUpdated) else None
        ),
    )


def _newest_register(samples: Iterable[MeterSample]) -> MeterSample | None:
    newest = None
    for sample in samples:
        if sample.energy_wh() is not None and (
            newest is None or sample.timestamp >= newest.timestamp
        ):
            newest = sample
    return newest


def _event_key(event: TransactionUpdated) -> str:
    """Name an Updated event the same way in every repeat of it."""
    if event.seq_no is not None:
        return str(event.seq_no)
    return event.timestamp.isoformat()


async def _billed_total(db: AsyncSession, row: Session) -> Decimal | None:
    """Return the final cost of a session already billed, if it was."""
    found = await db.exec(select(Cdr).where(col(Cdr.session_id) == row.id))
    cdr = found.first()
    return None if cdr is None else cdr.total_incl_vat
