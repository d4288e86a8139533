"""Answers to the charger requests that need a decision of the SG.

Decisions that need no durable state (connect, boot, authorize) are answered
from PostgreSQL; transactions go through their ChargeSession workflow
(``ingress.transactions``).
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import (
    Client,
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
    OcppMessage,
    OcppReply,
    RegistrationStatus,
    utcnow,
)
from bus.domain import DomainEvent, EventSink
from ingress.transactions import Transactions
from moovolt.settings import Settings
from store.models import Charger
from store.tokens import check_id_token

logger = logging.getLogger(__name__)

Handler = Callable[[EventEnvelope, Any], Awaitable[Decision]]


class Decider:
    """Decide on one charger request; one instance per SG process."""

    def __init__(
        self,
        settings: Settings,
        db: async_sessionmaker[AsyncSession],
        temporal: Client,
        *,
        events: EventSink | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.temporal = temporal
        self._events = events
        self._hasher = PasswordHasher()
        transactions = Transactions(settings, db, temporal)
        self._handlers: dict[str, Handler] = {
            "connecting": self.connect,
            "boot": self.boot,
            "authorize": self.authorize,
            "transaction_started": transactions.started,
            "transaction_updated": transactions.updated,
            "transaction_ended": transactions.ended,
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
            elif event.security_profile < charger.security_profile:
                logger.warning(
                    "charger %s connected with security profile %s, needs %s",
                    envelope.charger_id,
                    event.security_profile,
                    charger.security_profile,
                    extra={"charger_id": envelope.charger_id},
                )
                return ConnectDecision(accepted=False, reason="security_profile")
            # Profile 3's verified client certificate stands for the password.
            elif (
                charger.password_hash
                and event.security_profile < 3
                and not self._password_ok(charger.password_hash, event.password)
            ):
                return ConnectDecision(accepted=False, reason="password")

            charger.connected = True
            charger.gateway_id = envelope.gateway_id
            charger.ocpp_version = envelope.ocpp_version.value
            charger.last_seen_at = envelope.received_at
            db.add(charger)
            await db.commit()
        await self._tell_connected(envelope)
        return ConnectDecision(accepted=True)

    async def _tell_connected(self, envelope: EventEnvelope) -> None:
        if self._events is None:
            return
        event = DomainEvent(
            id=f"connected-{envelope.charger_id}-{envelope.message_id}",
            type="charger.connected",
            occurred_at=envelope.received_at,
            charger_id=envelope.charger_id,
            data={
                "gateway_id": envelope.gateway_id,
                "ocpp_version": envelope.ocpp_version.value,
            },
        )
        try:
            await self._events.publish_event(event)
        except Exception as exc:
            # The charger is let in either way; other systems miss one event.
            logger.warning("charger.connected not published: %s", exc)

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
            info = await check_id_token(
                db, event.id_token, utcnow(), event.id_token_type
            )
        return AuthorizeDecision(id_token_info=info)

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
