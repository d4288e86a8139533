"""Tables of the webhooks: subscriptions and the log of every delivery try."""

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Identity
from sqlmodel import Field, SQLModel

from bus.contract import utcnow


class Webhook(SQLModel, table=True):
    """A URL that receives the domain events it subscribes to, signed.

    ``secret`` signs the deliveries (HMAC-SHA256); unlike a password it must
    be readable to sign, so it is kept as given and shown once, at creation.
    """

    id: int | None = Field(default=None, primary_key=True)
    url: str
    secret: str = Field(repr=False)
    event_types: list[str] = Field(default_factory=list, sa_column=Column(JSON))
    description: str | None = None
    active: bool = True
    created_by: str
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class WebhookDelivery(SQLModel, table=True):
    """One try to deliver one event to one webhook."""

    __tablename__ = "webhook_delivery"

    id: int | None = Field(
        default=None, sa_column=Column(BigInteger, Identity(), primary_key=True)
    )
    webhook_id: int = Field(foreign_key="webhook.id", index=True)
    event_id: str = Field(index=True)
    event_type: str
    attempt: int
    outcome: str  # delivered | failed (this try) | abandoned (the last try)
    response_status: int | None = None
    error: str | None = None
    duration_ms: int | None = None
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    attempted_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )
