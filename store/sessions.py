"""Opening sessions: transaction ids, tariffs and the workflow's input.

Both the charger-initiated path (ingress) and the operator-initiated path (API)
open sessions here, so a transaction id is handed out exactly once per
StartTransaction however often the charger repeats it.
"""

import hashlib
from datetime import timedelta

from sqlalchemy import text, tuple_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from billing.tariff import TariffSnapshot
from bus.contract import TransactionStarted, utcnow
from moovolt.settings import Settings
from store.models import Charger, Session, Tariff
from workflows.types import SessionInput, SessionState, SessionTimeouts
from workflows.types import session_workflow_id as workflow_id_of

FREE = TariffSnapshot(name="free", currency="EUR")


def start_key(event: TransactionStarted) -> str:
    """Identify a start by what a repeat of it carries unchanged.

    A 2.0.1 charger names its transactions itself; a 1.6 start is known by
    its connector, id tag, timestamp and meter start.
    """
    if event.transaction_id is not None:
        return f"tx:{event.transaction_id}"[:64]
    raw = "|".join(
        (
            str(event.connector_id),
            event.id_token or "",
            event.timestamp.isoformat(),
            str(event.meter_start_wh),
        )
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


async def tariff_for(db: AsyncSession, charger_id: str) -> TariffSnapshot:
    """Return the charger's tariff, else the default one, else a free tariff."""
    charger = await db.get(Charger, charger_id)
    tariff = None
    if charger is not None and charger.tariff_id is not None:
        tariff = await db.get(Tariff, charger.tariff_id)
    if tariff is None:
        result = await db.exec(select(Tariff).where(col(Tariff.is_default)).limit(1))
        tariff = result.first()
    if tariff is None:
        return FREE
    return TariffSnapshot.model_validate(tariff, from_attributes=True)


async def _next_id(db: AsyncSession) -> int:
    result = await db.exec(
        text("SELECT nextval(pg_get_serial_sequence('session', 'id'))")  # type: ignore[call-overload]
    )
    return int(result.scalar_one())


async def reserve_remote_session(
    db: AsyncSession,
    *,
    charger_id: str,
    connector_id: int | None,
    id_token: str,
) -> Session:
    """Open a session for a remote start, before the charger names it."""
    session_id = await _next_id(db)
    tariff = await tariff_for(db, charger_id)
    row = Session(
        id=session_id,
        charger_id=charger_id,
        connector_id=connector_id,
        transaction_id=str(session_id),
        workflow_id=workflow_id_of(charger_id, str(session_id)),
        id_token=id_token,
        origin="operator",
        state=SessionState.REMOTE_START_REQUESTED,
        tariff=tariff.model_dump(mode="json"),
    )
    db.add(row)
    await db.commit()
    return row


async def open_charger_session(
    db: AsyncSession,
    *,
    charger_id: str,
    event: TransactionStarted,
    claim_window: timedelta,
) -> Session:
    """Return the session a StartTransaction belongs to, opening it if new.

    A repeat of the same StartTransaction finds the session it opened. A start
    that names the remote start it answers (2.0.1 remoteStartId, the session
    id) takes that session over; a 1.6 start matching a pending remote start
    (same charger, id token and connector, within ``claim_window``) does too.
    The session then goes by the charger's transaction id, if it named one.
    """
    key = start_key(event)
    found = await db.exec(
        select(Session).where(
            Session.charger_id == charger_id, Session.start_key == key
        )
    )
    existing = found.first()
    if existing is not None:
        return existing

    remote = await _pending_remote_start(db, charger_id, event, claim_window)
    if remote is not None:
        remote.start_key = key
        remote.connector_id = event.connector_id
        if event.transaction_id is not None:
            remote.transaction_id = event.transaction_id
        db.add(remote)
        await db.commit()
        return remote

    session_id = await _next_id(db)
    tariff = await tariff_for(db, charger_id)
    inserted = await db.exec(
        text(  # type: ignore[call-overload]
            "INSERT INTO session (id, charger_id, connector_id, transaction_id,"
            " start_key, workflow_id, id_token, origin, state, tariff, created_at)"
            " VALUES (:id, :charger, :connector, :tx, :key, :wf, :token,"
            " 'charger', :state, CAST(:tariff AS JSON), now())"
            " ON CONFLICT (charger_id, start_key) DO NOTHING RETURNING id"
        ).bindparams(
            id=session_id,
            charger=charger_id,
            connector=event.connector_id,
            tx=event.transaction_id or str(session_id),
            key=key,
            wf=workflow_id_of(charger_id, event.transaction_id or str(session_id)),
            token=event.id_token,
            state=SessionState.AUTHORIZING.value,
            tariff=tariff.model_dump_json(),
        )
    )
    inserted.first()
    await db.commit()

    # Whether this insert won or a concurrent repeat did, the key now exists.
    found = await db.exec(
        select(Session).where(
            Session.charger_id == charger_id, Session.start_key == key
        )
    )
    return found.one()


async def _pending_remote_start(
    db: AsyncSession,
    charger_id: str,
    event: TransactionStarted,
    claim_window: timedelta,
) -> Session | None:
    """Return, locked, the remote start that ``event`` answers, if any."""
    pending = (
        select(Session)
        .where(
            Session.charger_id == charger_id,
            Session.origin == "operator",
            col(Session.start_key).is_(None),
            Session.state == SessionState.REMOTE_START_REQUESTED,
        )
        .order_by(col(Session.id))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if event.remote_start_id is not None:
        pending = pending.where(Session.id == event.remote_start_id)
    else:
        pending = pending.where(
            Session.id_token == event.id_token,
            col(Session.created_at) > utcnow() - claim_window,
            (col(Session.connector_id).is_(None))
            | (Session.connector_id == event.connector_id),
        )
    found = await db.exec(pending)
    return found.first()


async def find_session(
    db: AsyncSession, charger_id: str, transaction_id: str
) -> Session | None:
    """Return the session of ``charger_id``'s ``transaction_id``, if any."""
    found = await db.exec(
        select(Session).where(
            Session.charger_id == charger_id,
            Session.transaction_id == transaction_id,
        )
    )
    return found.first()


async def session_workflow_ids(
    db: AsyncSession, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], str]:
    """Return the workflow id of each known ``(charger, transaction)``."""
    found = await db.exec(
        select(Session.charger_id, Session.transaction_id, Session.workflow_id).where(
            tuple_(Session.charger_id, Session.transaction_id).in_(keys)
        )
    )
    return {(charger, tx): workflow for charger, tx, workflow in found if tx}


def session_input(row: Session, settings: Settings) -> SessionInput:
    """Build the ChargeSession workflow's input from its session row."""
    assert row.id is not None and row.transaction_id is not None
    return SessionInput(
        session_id=row.id,
        charger_id=row.charger_id,
        transaction_id=row.transaction_id,
        connector_id=row.connector_id,
        id_token=row.id_token,
        origin="operator" if row.origin == "operator" else "charger",
        tariff=TariffSnapshot.model_validate(row.tariff) if row.tariff else FREE,
        timeouts=SessionTimeouts(
            remote_start_s=settings.remote_start_timeout_s,
            meter_silence_s=settings.meter_silence_timeout_s,
            max_duration_s=settings.session_max_duration_s,
            start_grace_s=settings.transaction_start_grace_s,
        ),
    )
