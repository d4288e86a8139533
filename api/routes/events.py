"""The live feed of domain events, as server-sent events."""

import asyncio
import fnmatch
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from aio_pika.exceptions import AMQPError
from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import ViewerDep
from api.live import LiveFeed
from api.problems import ProblemError, documented
from bus.domain import EVENT_TYPES, DomainEvent

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/events", tags=["events"])

# A comment line this often keeps proxies from closing an idle stream.
KEEPALIVE_S = 15.0

TYPES_HELP = "Event types to receive, `*` matching any part (`session.*`): " + (
    ", ".join(f"`{name}`" for name in EVENT_TYPES)
)


@router.get(
    "",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "One `event:`/`id:`/`data:` block per domain event.",
        },
        **documented(401, 403, 503),
    },
)
async def stream(
    request: Request,
    viewer: ViewerDep,
    types: Annotated[list[str] | None, Query(description=TYPES_HELP)] = None,
    charger_id: Annotated[str | None, Query(max_length=48)] = None,
    limit: Annotated[
        int | None, Query(ge=1, le=100_000, description="End after this many.")
    ] = None,
    duration_s: Annotated[
        float | None, Query(gt=0, le=86_400, description="End after this long.")
    ] = None,
) -> StreamingResponse:
    """Stream charger, session, CDR and payment events as they happen.

    The same events go to webhooks and to the AMQP exchange
    ``<prefix>.domain-events``; each has a stable `id` to drop repeats by.
    """
    feed: LiveFeed = request.app.state.live
    wanted = types or ["*"]
    try:
        await feed.ready()
    except (OSError, AMQPError) as exc:
        logger.warning("live feed unavailable: %s", exc)
        raise ProblemError(
            503,
            "live feed unavailable",
            "The message broker does not answer; try again shortly.",
            kind="live-feed-unavailable",
        ) from exc

    def matches(event: DomainEvent) -> bool:
        if charger_id is not None and event.charger_id != charger_id:
            return False
        return any(fnmatch.fnmatchcase(event.type, pattern) for pattern in wanted)

    async def frames() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = None if duration_s is None else loop.time() + duration_s
        sent = 0
        async with feed.subscribe() as buffer:
            yield ": subscribed\n\n"
            while limit is None or sent < limit:
                wait = KEEPALIVE_S
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                    if wait <= 0:
                        return
                try:
                    event = await asyncio.wait_for(buffer.get(), timeout=wait)
                except TimeoutError:
                    yield ": keepalive\n\n"
                    continue
                if event is None:
                    yield "event: overflow\ndata: {}\n\n"
                    return
                if matches(event):
                    sent += 1
                    yield (
                        f"id: {event.id}\nevent: {event.type}\n"
                        f"data: {event.model_dump_json()}\n\n"
                    )

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
