"""The Reservation workflow's one database activity: was it used?

The ingress tells a reservation's workflow when a start names it; this is the
check at expiry for a start it could not tell (Temporal away at that moment,
a charger that left the reservation id out): a session of the reserved id
token, on the reserved connector, opened while the reservation held.
"""

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity

from store.models import Session
from workflows.operation_types import (
    FIND_RESERVATION_USE,
    ReservationUse,
    ReservationUseQuery,
)


class ReservationActivities:
    """Activities of ``Reservation`` that read PostgreSQL.

    Args:
        db: the process's session factory.
    """

    def __init__(self, db: async_sessionmaker[AsyncSession]) -> None:
        self._db = db

    @activity.defn(name=FIND_RESERVATION_USE)
    async def find_reservation_use(
        self, query: ReservationUseQuery
    ) -> ReservationUse | None:
        """Return the first session that may have used the reservation, if any."""
        where = [
            col(Session.charger_id) == query.charger_id,
            col(Session.id_token) == query.id_token,
            col(Session.created_at) >= query.since,
            col(Session.created_at) <= query.until,
            col(Session.started_at).is_not(None),
        ]
        if query.connector_id:
            where.append(col(Session.connector_id) == query.connector_id)
        async with self._db() as db:
            found = (
                await db.exec(
                    select(Session)
                    .where(*where)
                    .order_by(col(Session.created_at))
                    .limit(1)
                )
            ).first()
        if found is None:
            return None
        assert found.started_at is not None
        activity.logger.info(
            "reservation at %s used by transaction %s",
            query.charger_id,
            found.transaction_id,
        )
        return ReservationUse(
            transaction_id=found.transaction_id,
            id_token=found.id_token,
            connector_id=found.connector_id,
            at=found.started_at,
        )
