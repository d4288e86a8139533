"""Answers to the charger requests that need a decision of the SG.

Decisions that need no durable state (connect, boot, authorize) are answered
from PostgreSQL; transactions go through their ChargeSession workflow.
"""

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import (
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from bus.contract import (
    AuthorizeDecision,
    AuthorizeRequest,
    BootDecision,
    BootRequest,
    ChargerConnecting,
    ConnectDecision,
    Decision,
    DecisionError,
    EventEnvelope,
    IdTokenInfo,
    OcppMessage,
    OcppReply,
    RegistrationStatus,
    StartDecision,
    StopDecision,
    TransactionEnded,
    TransactionStarted,
    utcnow,
)
from ingress.events import insert_meter_values, meter_rows
from moovolt.settings import Settings
from store.models import Charger, UnmatchedStop
from store.sessions import find_session, open_charger_session, session_input
from store.tokens import check_id_token
from workflows.types import (
    CHARGE_SESSION,
    TRANSACTION_ENDED,
    TRANSACTION_STARTED,
    SessionState,
    TransactionEndedInput,
    TransactionStartedInput,
    session_search_attributes,
)

logger = logging.getLogger(__name__)

Handler = Callable[[EventEnvelope, Any], Awaitable[Decision]]

# States after which the charger's transaction is over for the workflow.
_CLOSED = {
    SessionState.STOPPED,
    SessionState.BILLED,
    SessionState.NEVER_STARTED,
    SessionState.REMOTE_START_REJECTED,
}


class Decider:
    """Decide on one charger request; one instance per SG process."""

    def __init__(
        self,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        temporal: Client,
    ) -> None:
        self.settings = settings
        self.db = db
        self.temporal = temporal
        self._hasher = PasswordHasher()
        self._handlers: dict[str, Handler] = {
            "connecting": self.connect,
            "boot": self.boot,
            "authorize": self.authorize,
            "transaction_started": self.transaction_started,
            "transaction_ended": self.transaction_ended,
            "ocpp": self.ocpp_message,
        }

    async def decide(self, envelope: EventEnvelope) -> Decision:
        """Return the answer to ``envelope``'s request."""
        handler = self._handlers.get(envelope.event.kind)
        if handler is None:
            return DecisionError(
                code="NotImplemented",
                description=f"no decision for {envelope.event.kind}",
            )
        return await handler(envelope, envelope.event)

    async def connect(
        self, envelope: EventEnvelope, event: ChargerConnecting
    ) -> ConnectDecision:
        """Let a known charger in (checking its password if it has one)."""
        async with self.db() as db:
            charger = await db.get(Charger, envelope.charger_id)
            if charger is None and not self.settings.auto_register_chargers:
                return ConnectDecision(accepted=False, reason="unknown")
            if charger is None:
                charger = Charger(
                    id=envelope.charger_id,
                    registration_status=RegistrationStatus.PENDING,
                )
                logger.info(
                    "auto-registered charger %s as Pending",
                    envelope.charger_id,
                    extra={"charger_id": envelope.charger_id},
                )
            elif charger.password_hash and not self._password_ok(
                charger.password_hash, event.password
            ):
                return ConnectDecision(accepted=False, reason="password")

            charger.connected = True
            charger.gateway_id = envelope.gateway_id
            charger.ocpp_version = envelope.ocpp_version.value
            charger.last_seen_at = envelope.received_at
            db.add(charger)
            await db.commit()
        return ConnectDecision(accepted=True)

    def _password_ok(self, password_hash: str, password: str | None) -> bool:
        if password is None:
            return False
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def boot(self, envelope: EventEnvelope, event: BootRequest) -> BootDecision:
        """Record what the charger says it is; accept it if it is registered."""
        async with self.db() as db:
            charger = await db.get(Charger, envelope.charger_id)
            if charger is None:
                # Deleted since it connected: treat as unknown.
                return BootDecision(
                    status=RegistrationStatus.REJECTED,
                    interval_s=self.settings.heartbeat_interval_s,
                )
            charger.vendor = event.vendor
            charger.model = event.model
            charger.serial_number = event.serial_number
            charger.firmware_version = event.firmware_version
            charger.booted_at = envelope.received_at
            charger.last_seen_at = envelope.received_at
            db.add(charger)
            await db.commit()
            registered = charger.registration_status == RegistrationStatus.ACCEPTED

        status = (
            RegistrationStatus.ACCEPTED
            if registered
            else RegistrationStatus(self.settings.boot_policy_unaccepted.value)
        )
        return BootDecision(
            status=status, interval_s=self.settings.heartbeat_interval_s
        )

    async def authorize(
        self, envelope: EventEnvelope, event: AuthorizeRequest
    ) -> AuthorizeDecision:
        """Look the id token up."""
        async with self.db() as db:
            info = await check_id_token(db, event.id_token, utcnow())
        return AuthorizeDecision(id_token_info=info)

    async def transaction_started(
        self, envelope: EventEnvelope, event: TransactionStarted
    ) -> StartDecision:
        """Open (or find again) the session and let its workflow authorize it."""
        async with self.db() as db:
            row = await open_charger_session(
                db,
                charger_id=envelope.charger_id,
                event=event,
                claim_window=timedelta(seconds=self.settings.remote_start_timeout_s),
            )
            if SessionState(row.state) in _CLOSED:
                # A repeat of a start whose session is already over.
                info = (
                    await check_id_token(db, event.id_token, utcnow())
                    if event.id_token
                    else None
                )
                assert row.transaction_id is not None
                return StartDecision(
                    transaction_id=row.transaction_id, id_token_info=info
                )

        assert row.transaction_id is not None and row.start_key is not None
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
        verdict: IdTokenInfo = await self.temporal.execute_update_with_start_workflow(
            TRANSACTION_STARTED,
            TransactionStartedInput(
                connector_id=event.connector_id,
                id_token=event.id_token,
                meter_start_wh=event.meter_start_wh,
                timestamp=event.timestamp,
            ),
            start_workflow_operation=start,
            id=f"start-{row.start_key}",
            result_type=IdTokenInfo,
        )
        return StartDecision(transaction_id=row.transaction_id, id_token_info=verdict)

    async def transaction_ended(
        self, envelope: EventEnvelope, event: TransactionEnded
    ) -> StopDecision:
        """Store the stop's meter values and hand the stop to the workflow."""
        async with self.db() as db:
            row = await find_session(db, envelope.charger_id, event.transaction_id)
            connector_id = row.connector_id if row is not None else None
            rows = meter_rows(
                envelope.charger_id,
                connector_id or 0,
                event.transaction_id,
                event.samples,
            )
            if rows:
                await db.exec(insert_meter_values(rows))
            if row is None:
                await self._record_unmatched(db, envelope, event)
            # With no workflow to ask, the verdict on the stop's token is ours.
            answer_here = row is None or row.stopped_at is not None
            info = (
                await check_id_token(db, event.id_token, utcnow())
                if answer_here and event.id_token
                else None
            )
            await db.commit()

        if answer_here:
            return StopDecision(id_token_info=info)
        assert row is not None

        handle = self.temporal.get_workflow_handle(row.workflow_id)
        verdict: IdTokenInfo | None = await handle.execute_update(
            TRANSACTION_ENDED,
            TransactionEndedInput(
                meter_stop_wh=event.meter_stop_wh,
                timestamp=event.timestamp,
                id_token=event.id_token,
                reason=event.reason,
            ),
            id=f"stop-{row.transaction_id}",
            result_type=IdTokenInfo | None,  # type: ignore[arg-type]
        )
        return StopDecision(id_token_info=verdict)

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

    async def ocpp_message(
        self, envelope: EventEnvelope, event: OcppMessage
    ) -> Decision:
        """Answer version-specific requests the SG has no use for yet."""
        if event.action == "DataTransfer":
            # OCPP's answer when no vendor extension is installed.
            return OcppReply(payload={"status": "UnknownVendorId"})
        return DecisionError(
            code="NotImplemented", description=f"{event.action} is not supported"
        )
