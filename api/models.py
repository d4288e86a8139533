"""What the API reads and returns; tables stay in ``store.models``.

Money and energy are decimals, serialised as strings so no precision is lost;
times are ISO 8601 in UTC.
"""

from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from billing.tariff import Cost
from bus.contract import CommandOutcome
from workflows.types import SessionProgress


class _Public(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="How many items match, on all pages.")
    limit: int
    offset: int


class ConnectorPublic(_Public):
    connector_id: int = Field(
        description="The 1.6 connector (0 is the charger itself) or the 2.0.1 EVSE."
    )
    evse_connector_id: int = Field(
        description="The 2.0.1 connector within the EVSE; 0 for 1.6."
    )
    status: str
    error_code: str
    info: str | None
    vendor_error_code: str | None
    status_at: datetime | None


class ChargerPublic(_Public):
    id: str
    registration_status: str
    status: str = Field(
        description="Offline when no gateway holds the charger's connection, "
        "else connector 0's status, else Online."
    )
    connected: bool
    gateway_id: str | None
    ocpp_version: str | None
    vendor: str | None
    model: str | None
    serial_number: str | None
    firmware_version: str | None
    tariff_id: int | None
    last_seen_at: datetime | None
    booted_at: datetime | None
    created_at: datetime
    connectors: list[ConnectorPublic]


class ChargerPage(Page[ChargerPublic]):
    pass


class RemoteStartCreate(BaseModel):
    """Ask a charger to start charging for an id token."""

    connector_id: int | None = Field(
        default=None, ge=1, description="Leave out to let the charger choose."
    )
    id_token: str = Field(min_length=1, max_length=36)


class CommandAnswer(BaseModel):
    """A charger's answer to a command."""

    outcome: CommandOutcome
    status: str | None
    payload: dict[str, Any]


class RemoteStartPublic(CommandAnswer):
    session_id: int
    transaction_id: str
    workflow_id: str


class StopPublic(CommandAnswer):
    session_id: int
    workflow_id: str


class SessionPublic(_Public):
    id: int
    charger_id: str
    connector_id: int | None
    transaction_id: str | None
    workflow_id: str
    id_token: str
    origin: str
    state: str
    meter_start_wh: Decimal | None
    meter_stop_wh: Decimal | None
    energy_wh: Decimal | None
    started_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None
    created_at: datetime


class SessionPage(Page[SessionPublic]):
    pass


class SessionLive(BaseModel):
    """What the running workflow knows now."""

    energy_wh: Decimal
    cost: Cost
    progress: SessionProgress


class SessionDetail(SessionPublic):
    tariff: dict[str, Any] | None
    temporal_ui_url: str
    live: SessionLive | None = Field(
        default=None, description="Present while the session runs."
    )
    live_error: str | None = Field(
        default=None,
        description="Why ``live`` is missing for a running session.",
    )


class MeterValuePublic(_Public):
    connector_id: int
    sampled_at: datetime
    measurand: str
    phase: str
    location: str
    context: str
    unit: str
    value: Decimal


class MeterValuePage(Page[MeterValuePublic]):
    pass


class CdrPublic(_Public):
    id: str
    session_id: int
    charger_id: str
    connector_id: int | None
    transaction_id: str | None
    id_token: str
    started_at: datetime
    stopped_at: datetime
    meter_start_wh: Decimal
    meter_stop_wh: Decimal
    energy_wh: Decimal
    duration_s: int
    currency: str
    tariff: dict[str, Any]
    cost_energy: Decimal
    cost_time: Decimal
    cost_session: Decimal
    total_excl_vat: Decimal
    vat: Decimal
    total_incl_vat: Decimal
    created_at: datetime


class CdrPage(Page[CdrPublic]):
    pass


class Health(BaseModel):
    status: str
    database: str | None = None
    temporal: str | None = None
