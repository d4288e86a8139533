"""Liveness and readiness probes and the metrics; unauthenticated.

``/metrics`` is served at the root only (``metrics_router``), not under the
API prefix, so a proxy that publishes only ``/api/v1`` does not publish it;
keep the root on an internal network.
"""

import logging

from fastapi import APIRouter, Response
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from api.deps import SessionDep, TemporalDep
from api.models import Health
from api.problems import ProblemError, documented
from moovolt import metrics

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])
metrics_router = APIRouter(tags=["health"])


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


@metrics_router.get("/metrics", include_in_schema=False)
async def prometheus_metrics() -> Response:
    """Return the API's metrics in the Prometheus text format."""
    body, content_type = metrics.exposition(metrics.API)
    return Response(body, media_type=content_type)
