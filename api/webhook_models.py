"""Request and response bodies of the webhooks routes."""

import fnmatch
from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, field_validator

from api.models import Page
from bus.domain import EVENT_TYPES

EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(
        max_length=32,
        description="Event types to receive, `*` matching any part "
        "(`session.*`); empty: every type. Types: " + ", ".join(EVENT_TYPES),
    ),
]


def _known(patterns: list[str]) -> list[str]:
    for pattern in patterns:
        if not any(fnmatch.fnmatchcase(name, pattern) for name in EVENT_TYPES):
            raise ValueError(f"{pattern!r} matches no event type")
    return patterns


class WebhookCreate(BaseModel):
    url: AnyHttpUrl
    event_types: EventTypes = []
    description: Annotated[str | None, Field(max_length=200)] = None

    _check_types = field_validator("event_types")(_known)


class WebhookUpdate(BaseModel):
    url: AnyHttpUrl | None = None
    event_types: EventTypes | None = None
    description: Annotated[str | None, Field(max_length=200)] = None
    active: bool | None = None

    @field_validator("event_types")
    @classmethod
    def _check_types(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _known(value)


class WebhookPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    url: str
    event_types: list[str]
    description: str | None
    active: bool
    created_by: str
    created_at: datetime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="Signs every delivery (HMAC-SHA256, `Moovolt-Signature`); "
        "shown this once."
    )


class WebhookDeliveryPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    webhook_id: int
    event_id: str
    event_type: str
    attempt: int
    outcome: str = Field(description="delivered, failed (this try) or abandoned.")
    response_status: int | None
    error: str | None
    duration_ms: int | None
    attempted_at: datetime


WebhookPage = Page[WebhookPublic]
WebhookDeliveryPage = Page[WebhookDeliveryPublic]
