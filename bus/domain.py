"""Domain events: what happened in the network, for other systems.

The SG publishes them on the topic exchange ``<prefix>.domain-events``,
routed by their type (``charger.status``, ``session.billed``, ...), so a
system binds its own queue with a pattern such as ``session.#`` or ``#``.
Delivery is at least once: an event's ``id`` names the fact, so a consumer
that sees an id twice drops the repeat. The API's live feed and the webhooks
read the same events.
"""

from datetime import datetime
from typing import Any, Protocol

import aio_pika
from pydantic import BaseModel, ConfigDict, Field

from bus.contract import utcnow

# Every type the SG publishes, with what ``data`` holds.
EVENT_TYPES: dict[str, str] = {
    "charger.connected": "a charger's WebSocket was admitted (gateway, version)",
    "charger.disconnected": "a charger's WebSocket closed",
    "charger.status": "a connector's status changed (status, error code)",
    "session.started": "a transaction started (connector, meter start, id token)",
    "session.state": "a session moved to another state (state)",
    "session.stopped": "a transaction ended (meter stop, energy, reason)",
    "cdr.created": "a session's CDR was written (energy, duration, cost)",
    "payment.captured": "a CDR's payment was taken (amount, provider)",
    "payment.waived": "a CDR had nothing to pay",
    "payment.declined": "the payment provider refused a CDR's payment",
}


class DomainEvent(BaseModel):
    """One fact, as other systems receive it."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="Names the fact; the same fact keeps its id.")
    type: str
    occurred_at: datetime = Field(default_factory=utcnow)
    charger_id: str | None = None
    session_id: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def message(self) -> aio_pika.Message:
        """Return the event as a persistent AMQP message."""
        return aio_pika.Message(
            self.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=self.id,
            type=self.type,
        )


class EventSink(Protocol):
    """Where domain events go (the bus; a list in tests)."""

    async def publish_event(self, event: DomainEvent) -> None:
        """Publish ``event``; raise if it could not be."""
        ...
