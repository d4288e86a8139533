"""Storing fire-and-forget charger events in batches.

Meter values and status notifications arrive far more often than decisions;
they are written many to one transaction, each sample once however often the
charger repeats it, and the running sessions hear of new energy readings
through a throttled signal rather than one workflow event per sample.
Firmware, log and reservation notifications are handed over, once stored, to
the workflow that follows them (``Handoff``).
"""

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bus.contract import (
    ChargerDisconnected,
    Decision,
    EventEnvelope,
    HeartbeatSeen,
    MeterReadings,
    MeterSample,
    OcppMessage,
    StartDecision,
    StatusChanged,
    TransactionStarted,
    VariablesReported,
)
from bus.domain import DomainEvent
from store.models import Charger, DeviceVariable, MeterValue, SecurityEvent
from workflows.operation_types import (
    CHARGER_STATUS,
    NOTICE_ROUTES,
    USED,
    ReservationUse,
    StatusNotice,
    reservation_workflow_id,
)
from workflows.types import MeterProgress

logger = logging.getLogger(__name__)


def meter_rows(
    charger_id: str,
    connector_id: int,
    transaction_id: str | None,
    samples: Iterable[MeterSample],
) -> list[dict[str, Any]]:
    """Return ``meter_value`` rows for ``samples``, one per distinct sample."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for sample in samples:
        key = (
            sample.timestamp,
            sample.measurand,
            sample.phase,
            sample.location,
            sample.context,
        )
        rows[key] = {
            "charger_id": charger_id,
            "connector_id": connector_id,
            "transaction_id": transaction_id,
            "sampled_at": sample.timestamp,
            "measurand": sample.measurand,
            "phase": sample.phase,
            "location": sample.location,
            "context": sample.context,
            "unit": sample.unit,
            "value": sample.value,
        }
    return list(rows.values())


def insert_meter_values(rows: list[dict[str, Any]]) -> Any:
    """Return an INSERT of meter values that skips samples already stored."""
    return (
        insert(MeterValue)
        .values(rows)
        .on_conflict_do_nothing(constraint="meter_value_sample_key")
    )


_UPSERT_CONNECTOR = text(
    "INSERT INTO connector (charger_id, connector_id, evse_connector_id, status,"
    " error_code, info, vendor_error_code, status_at)"
    " SELECT CAST(:charger_id AS VARCHAR), CAST(:connector_id AS INTEGER),"
    " CAST(:evse_connector_id AS INTEGER),"
    " CAST(:status AS VARCHAR), CAST(:error_code AS VARCHAR),"
    " CAST(:info AS VARCHAR), CAST(:vendor_error_code AS VARCHAR),"
    " CAST(:status_at AS TIMESTAMPTZ)"
    " WHERE EXISTS (SELECT 1 FROM charger WHERE id = CAST(:charger_id AS VARCHAR))"
    " ON CONFLICT (charger_id, connector_id, evse_connector_id) DO UPDATE SET"
    " status = excluded.status, error_code = excluded.error_code,"
    " info = excluded.info, vendor_error_code = excluded.vendor_error_code,"
    " status_at = excluded.status_at"
    # An older notification delivered late never overwrites a newer one.
    " WHERE connector.status_at IS NULL OR excluded.status_at >= connector.status_at"
)

_INSERT_STATUS_EVENT = text(
    "INSERT INTO status_event (charger_id, connector_id, evse_connector_id,"
    " status, error_code, info, vendor_error_code, status_at, received_at)"
    " VALUES (:charger_id, :connector_id, :evse_connector_id, :status,"
    " :error_code, :info, :vendor_error_code, :status_at, :received_at)"
    " ON CONFLICT DO NOTHING"
)

_SEEN = text(
    "UPDATE charger SET last_seen_at = GREATEST(last_seen_at, :seen_at)"
    " WHERE id = :charger_id"
)

_DISCONNECTED = text(
    "UPDATE charger SET connected = false"
    # Only the gateway that holds the charger may mark it gone: the charger
    # may already be connected to another one.
    " WHERE id = :charger_id AND gateway_id = :gateway_id"
)


def device_variable_rows(
    charger_id: str, report: VariablesReported
) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Return ``device_variable`` rows of one NotifyReport part, by key."""
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for reported in report.variables:
        row = reported.model_dump()
        row.update(
            charger_id=charger_id,
            report_id=report.request_id,
            reported_at=report.generated_at,
        )
        key = (
            charger_id,
            reported.component,
            reported.component_instance,
            reported.evse_id,
            reported.connector_id,
            reported.variable,
            reported.variable_instance,
            reported.attribute_type,
        )
        rows[key] = row
    return rows


def upsert_device_variables(rows: list[dict[str, Any]]) -> Any:
    """Return an upsert of device-model rows: the newest report wins."""
    statement = insert(DeviceVariable).values(rows)
    excluded = statement.excluded
    return statement.on_conflict_do_update(
        constraint="device_variable_key",
        set_={
            name: excluded[name]
            for name in (
                "value",
                "mutability",
                "persistent",
                "constant",
                "data_type",
                "unit",
                "report_id",
                "reported_at",
            )
        },
        where=DeviceVariable.reported_at <= excluded.reported_at,
    )


def security_event_row(
    charger_id: str, message: OcppMessage, received_at: datetime
) -> dict[str, Any] | None:
    """Return the ``security_event`` row of a SecurityEventNotification."""
    payload = message.payload
    try:
        occurred_at = datetime.fromisoformat(str(payload["timestamp"]))
        event_type = str(payload["type"])
    except (KeyError, ValueError):
        return None
    return {
        "charger_id": charger_id,
        "event_type": event_type,
        "tech_info": payload.get("techInfo"),
        "occurred_at": occurred_at,
        "received_at": received_at,
    }


def status_event(row: dict[str, Any]) -> DomainEvent:
    """Return the ``charger.status`` event of a stored status row."""
    at: datetime = row["status_at"]
    connector = f"{row['connector_id']}.{row['evse_connector_id']}"
    return DomainEvent(
        id=f"status-{row['charger_id']}-{connector}-{at.isoformat()}-{row['status']}",
        type="charger.status",
        occurred_at=at,
        charger_id=row["charger_id"],
        data={
            "connector_id": row["connector_id"],
            "evse_connector_id": row["evse_connector_id"],
            "status": row["status"],
            "error_code": row["error_code"],
            "info": row["info"],
        },
    )


# A hand-off Temporal does not take this fast is given up (and logged).
SIGNAL_TIMEOUT = timedelta(seconds=5)


@dataclass(frozen=True)
class Handoff:
    """A signal for the workflow that follows what a charger said."""

    workflow_id: str
    signal: str
    arg: BaseModel


def notice_handoff(
    charger_id: str, message: OcppMessage, received_at: datetime
) -> Handoff | None:
    """Return the hand-off of a firmware, log or reservation notification.

    None for a message no workflow follows, or one without the fields its
    route needs (logged).
    """
    route = NOTICE_ROUTES.get(message.action)
    if route is None:
        return None
    payload = message.payload
    try:
        request_id = payload.get(route.request_field) if route.request_field else None
        notice = StatusNotice(
            action=message.action,
            status=payload[route.status_field],
            request_id=request_id,
            at=received_at,
        )
        workflow_id = route.workflow_id(charger_id, payload)
    except (KeyError, TypeError, ValueError, ValidationError) as exc:
        logger.warning(
            "%s not handed over: %s",
            message.action,
            exc,
            extra={"charger_id": charger_id},
        )
        return None
    return Handoff(workflow_id, CHARGER_STATUS, notice)


def reservation_used(envelope: EventEnvelope, decision: Decision) -> list[Handoff]:
    """Return the hand-off of a transaction start that names a reservation."""
    event = envelope.event
    if not isinstance(event, TransactionStarted) or event.reservation_id is None:
        return []
    if not isinstance(decision, StartDecision):
        return []  # the SG could not decide: the charger will send it again
    use = ReservationUse(
        transaction_id=decision.transaction_id,
        id_token=event.id_token,
        connector_id=event.connector_id,
        at=event.timestamp,
    )
    workflow_id = reservation_workflow_id(envelope.charger_id, event.reservation_id)
    return [Handoff(workflow_id, USED, use)]


async def hand_off(temporal: Client, handoffs: Sequence[Handoff]) -> None:
    """Signal each workflow its hand-offs, in order; best effort.

    A workflow that does not run (none was started, or it has ended) is not
    an error: the notification was for nobody, and is stored as last seen.
    """
    by_workflow: dict[str, list[Handoff]] = {}
    for handoff in handoffs:
        by_workflow.setdefault(handoff.workflow_id, []).append(handoff)
    await asyncio.gather(
        *(_signal_in_order(temporal, items) for items in by_workflow.values())
    )


async def _signal_in_order(temporal: Client, handoffs: list[Handoff]) -> None:
    for handoff in handoffs:
        handle = temporal.get_workflow_handle(handoff.workflow_id)
        try:
            await handle.signal(handoff.signal, handoff.arg, rpc_timeout=SIGNAL_TIMEOUT)
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                logger.debug("no %s to hand over to", handoff.workflow_id)
                continue
            logger.warning(
                "%s not handed over to %s: %s",
                handoff.signal,
                handoff.workflow_id,
                exc.message,
            )


@dataclass
class Batch:
    """What one transaction writes, gathered from a run of events."""

    meter_values: list[dict[str, Any]] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, Any] = field(default_factory=dict)
    disconnected: list[dict[str, Any]] = field(default_factory=list)
    variables: dict[tuple[Any, ...], dict[str, Any]] = field(default_factory=dict)
    security_events: list[dict[str, Any]] = field(default_factory=list)
    # Notifications for the firmware, log and reservation workflows, in order.
    handoffs: list[Handoff] = field(default_factory=list)
    # What other systems hear of once the batch is stored.
    domain_events: list[DomainEvent] = field(default_factory=list)
    # (charger, transaction) -> newest energy register reading in this batch
    progress: dict[tuple[str, str], MeterProgress] = field(default_factory=dict)

    def add(self, envelope: EventEnvelope) -> None:
        """Fold one event into the batch."""
        charger_id = envelope.charger_id
        seen = self.seen.get(charger_id)
        if seen is None or envelope.received_at > seen:
            self.seen[charger_id] = envelope.received_at

        event = envelope.event
        if isinstance(event, MeterReadings):
            self._add_meter(charger_id, event)
        elif isinstance(event, StatusChanged):
            row = {
                "charger_id": charger_id,
                "connector_id": event.connector_id,
                "evse_connector_id": event.evse_connector_id or 0,
                "status": event.status,
                "error_code": event.error_code,
                "info": event.info,
                "vendor_error_code": event.vendor_error_code,
                "status_at": event.timestamp or envelope.received_at,
                "received_at": envelope.received_at,
            }
            self.statuses.append(row)
            self.domain_events.append(status_event(row))
        elif isinstance(event, ChargerDisconnected):
            self.disconnected.append(
                {"charger_id": charger_id, "gateway_id": envelope.gateway_id}
            )
            self.domain_events.append(
                DomainEvent(
                    id=f"disconnected-{charger_id}-{envelope.message_id}",
                    type="charger.disconnected",
                    occurred_at=envelope.received_at,
                    charger_id=charger_id,
                    data={
                        "gateway_id": envelope.gateway_id,
                        "close_code": event.close_code,
                    },
                )
            )
        elif isinstance(event, VariablesReported):
            self.variables.update(device_variable_rows(charger_id, event))
        elif isinstance(event, OcppMessage):
            self._add_message(charger_id, event, envelope.received_at)
        elif isinstance(event, HeartbeatSeen):
            pass  # last seen is all it changes
        else:
            logger.warning(
                "event %s is not fire-and-forget, dropped",
                event.kind,
                extra={"charger_id": charger_id},
            )

    def _add_message(
        self, charger_id: str, message: OcppMessage, received_at: datetime
    ) -> None:
        if message.action in NOTICE_ROUTES:
            handoff = notice_handoff(charger_id, message, received_at)
            if handoff is not None:
                self.handoffs.append(handoff)
            return
        if message.action != "SecurityEventNotification":
            return  # last seen is all the others change for now
        row = security_event_row(charger_id, message, received_at)
        if row is None:
            logger.warning(
                "SecurityEventNotification without type or timestamp, not stored",
                extra={"charger_id": charger_id},
            )
            return
        logger.info(
            "security event %s from %s",
            row["event_type"],
            charger_id,
            extra={"charger_id": charger_id},
        )
        self.security_events.append(row)

    def _add_meter(self, charger_id: str, event: MeterReadings) -> None:
        self.meter_values.extend(
            meter_rows(
                charger_id, event.connector_id, event.transaction_id, event.samples
            )
        )
        if event.transaction_id is None:
            return
        key = (charger_id, event.transaction_id)
        for sample in event.samples:
            energy = sample.energy_wh()
            if energy is None:
                continue
            known = self.progress.get(key)
            if known is None or sample.timestamp >= known.sampled_at:
                self.progress[key] = MeterProgress(
                    energy_register_wh=energy, sampled_at=sample.timestamp
                )

    async def write(self, db: AsyncSession) -> None:
        """Write the batch in the caller's transaction."""
        for chunk in _chunks(self.meter_values, 1000):
            await db.exec(insert_meter_values(chunk))
        if self.statuses:
            await db.exec(_INSERT_STATUS_EVENT, params=self.statuses)  # type: ignore[call-overload]
            # Oldest first, so the newest notification of a connector wins.
            await db.exec(
                _UPSERT_CONNECTOR,  # type: ignore[call-overload]
                params=sorted(self.statuses, key=lambda r: r["status_at"]),
            )
        if self.seen:
            await db.exec(
                _SEEN,  # type: ignore[call-overload]
                params=[{"charger_id": c, "seen_at": t} for c, t in self.seen.items()],
            )
        if self.disconnected:
            await db.exec(_DISCONNECTED, params=self.disconnected)  # type: ignore[call-overload]
        if self.variables:
            # A charger deleted while still connected has no model to keep.
            reporting = {row["charger_id"] for row in self.variables.values()}
            known = set(
                (
                    await db.exec(
                        select(Charger.id).where(col(Charger.id).in_(reporting))
                    )
                ).all()
            )
            rows = [r for r in self.variables.values() if r["charger_id"] in known]
            for chunk in _chunks(rows, 1000):
                await db.exec(upsert_device_variables(chunk))
        if self.security_events:
            await db.exec(
                insert(SecurityEvent)
                .values(self.security_events)
                .on_conflict_do_nothing(constraint="security_event_key")
            )


def _chunks(
    rows: Sequence[dict[str, Any]], size: int
) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield list(rows[start : start + size])


class SignalThrottle:
    """Let a session's progress signal through at most once per interval."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[tuple[str, str], float] = {}

    def due(self, key: tuple[str, str]) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval_s:
            return False
        self._last[key] = now
        if len(self._last) > 100_000:
            self._forget_older_than(now - self.interval_s)
        return True

    def _forget_older_than(self, cutoff: float) -> None:
        self._last = {k: t for k, t in self._last.items() if t >= cutoff}
