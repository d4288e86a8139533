"""Liveness and readiness probes; unauthenticated."""

import logging

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep, TemporalDep
from api.models import Health
from api.problems import ProblemError, documented

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def liveness() -> Health:
    """Answer while the process runs."""
    return Health(status="ok")


@router.get("/readyz", responses=documented(503))
async def readiness(db: SessionDep, temporal: TemporalDep) -> Health:
    """Answer 200 when the database answers.

    Temporal is reported but not required: the API serves what needs only the
    database while Temporal boots.
    """
    try:
        await db.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("readiness: database does not answer: %s", exc)
        raise ProblemError(
            503, "Not ready", "The database does not answer.", kind="not-ready"
        ) from exc
    return Health(
        status="ready",
        database="ok",
        temporal="connected" if temporal.connected else "connecting",
    )
