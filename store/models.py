"""Tables of moov.olt. Schema changes go through ``store/migrations``."""

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    Numeric,
    UniqueConstraint,
    text,
)
from sqlmodel import Field, SQLModel

from bus.contract import utcnow


def _ts(*, nullable: bool = True, index: bool = False) -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=nullable, index=index),
    )


def _money(default: Decimal = Decimal(0)) -> Any:
    return Field(default=default, sa_column=Column(Numeric(14, 4), nullable=False))


class Tariff(SQLModel, table=True):
    """Prices of a charge: energy, time, a fixed fee, in one currency, plus VAT.

    At most one tariff is the default, the one of chargers without their own.
    """

    __table_args__ = (
        Index(
            "tariff_one_default",
            "is_default",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    currency: str = Field(default="EUR", max_length=3)
    price_per_kwh: Decimal = _money()
    price_per_minute: Decimal = _money()
    price_per_session: Decimal = _money()
    vat_percent: Decimal = _money()
    is_default: bool = False
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Charger(SQLModel, table=True):
    """A charge point, known by its OCPP charge point id."""

    id: str = Field(primary_key=True, max_length=48)
    registration_status: str = "Accepted"
    password_hash: str | None = None
    # The OCPP security profile the charger must connect with (0: any).
    security_profile: int = 0
    tariff_id: int | None = Field(default=None, foreign_key="tariff.id")
    vendor: str | None = None
    model: str | None = None
    serial_number: str | None = None
    firmware_version: str | None = None
    ocpp_version: str | None = None
    gateway_id: str | None = None
    connected: bool = False
    last_seen_at: datetime | None = _ts()
    booted_at: datetime | None = _ts()
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Connector(SQLModel, table=True):
    """A connector of a charger with its last status.

    ``connector_id`` is the 1.6 connector (0 is the charger itself) or the
    2.0.1 EVSE; ``evse_connector_id`` the 2.0.1 connector within it (0: 1.6).
    """

    charger_id: str = Field(foreign_key="charger.id", primary_key=True)
    connector_id: int = Field(primary_key=True)
    evse_connector_id: int = Field(default=0, primary_key=True)
    status: str = "Unknown"
    error_code: str = "NoError"
    info: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime | None = _ts()


class StatusEvent(SQLModel, table=True):
    """Every StatusNotification received, once."""

    __tablename__ = "status_event"

    __table_args__ = (
        UniqueConstraint(
            "charger_id",
            "connector_id",
            "evse_connector_id",
            "status_at",
            "status",
            name="status_event_key",
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), primary_key=True),
    )
    charger_id: str = Field(index=True)
    connector_id: int
    evse_connector_id: int = 0
    status: str
    error_code: str
    info: str | None = None
    vendor_error_code: str | None = None
    status_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class IdToken(SQLModel, table=True):
    """An RFID card or other token a driver identifies with."""

    __tablename__ = "id_token"

    token: str = Field(primary_key=True, max_length=36)
    # The 2.0.1 IdTokenEnumType it must be presented as (None: any type).
    token_type: str | None = None
    status: str = "Accepted"
    expires_at: datetime | None = _ts()
    # The group: 1.6 parentIdTag, 2.0.1 groupIdToken.
    parent_token: str | None = Field(default=None, index=True)
    owner: str | None = Field(default=None, index=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Session(SQLModel, table=True):
    """A charge session, one per transaction, driven by its workflow.

    For OCPP 1.6 the id is the transactionId the CSMS hands out; ``start_key``
    identifies the StartTransaction that opened it, so a repeated one finds
    the same session instead of opening another. ``charger_id`` is no foreign
    key: sessions outlive a deleted charger.
    """

    __table_args__ = (
        UniqueConstraint("charger_id", "transaction_id"),
        UniqueConstraint("charger_id", "start_key"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), primary_key=True),
    )
    charger_id: str = Field(index=True)
    connector_id: int | None = None
    transaction_id: str | None = None
    start_key: str | None = None
    workflow_id: str = Field(unique=True)
    # None while a 2.0.1 transaction runs before any id token is presented.
    id_token: str | None = Field(default=None, index=True)
    origin: str = "charger"
    state: str = Field(default="Pending", index=True)
    meter_start_wh: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(18, 3))
    )
    meter_stop_wh: Decimal | None = Field(
        default=None, sa_column=Column(Numeric(18, 3))
    )
    energy_wh: Decimal | None = Field(default=None, sa_column=Column(Numeric(18, 3)))
    started_at: datetime | None = _ts(index=True)
    stopped_at: datetime | None = _ts()
    stop_reason: str | None = None
    tariff: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class MeterValue(SQLModel, table=True):
    """One sampled value; duplicates of a sample are stored once."""

    __tablename__ = "meter_value"

    __table_args__ = (
        UniqueConstraint(
            "charger_id",
            "connector_id",
            "sampled_at",
            "measurand",
            "phase",
            "location",
            "context",
            name="meter_value_sample_key",
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), primary_key=True),
    )
    charger_id: str
    connector_id: int
    transaction_id: str | None = Field(default=None, index=True)
    sampled_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))
    measurand: str
    phase: str = ""
    location: str = ""
    context: str = ""
    unit: str
    value: Decimal = Field(sa_column=Column(Numeric(18, 3), nullable=False))


class UnmatchedStop(SQLModel, table=True):
    """A StopTransaction for a transaction the CSMS never opened."""

    __tablename__ = "unmatched_stop"

    __table_args__ = (UniqueConstraint("charger_id", "transaction_id"),)

    id: int | None = Field(default=None, primary_key=True)
    charger_id: str
    transaction_id: str
    id_token: str | None = None
    meter_stop_wh: Decimal = Field(sa_column=Column(Numeric(18, 3)))
    stopped_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))
    reason: str | None = None
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Cdr(SQLModel, table=True):
    """Charge detail record: written once per session, never edited."""

    id: str = Field(primary_key=True)
    session_id: int = Field(foreign_key="session.id", unique=True)
    charger_id: str = Field(index=True)
    connector_id: int | None = None
    transaction_id: str | None = None
    id_token: str | None = None
    started_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))
    stopped_at: datetime = Field(sa_column=Column(DateTime(timezone=True), index=True))
    meter_start_wh: Decimal = Field(sa_column=Column(Numeric(18, 3)))
    meter_stop_wh: Decimal = Field(sa_column=Column(Numeric(18, 3)))
    energy_wh: Decimal = Field(sa_column=Column(Numeric(18, 3)))
    duration_s: int
    currency: str
    tariff: dict[str, Any] = Field(sa_column=Column(JSON))
    cost_energy: Decimal = _money()
    cost_time: Decimal = _money()
    cost_session: Decimal = _money()
    total_excl_vat: Decimal = _money()
    vat: Decimal = _money()
    total_incl_vat: Decimal = _money()
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Payment(SQLModel, table=True):
    """Money taken for a CDR, once per idempotency key."""

    id: int | None = Field(default=None, primary_key=True)
    cdr_id: str = Field(foreign_key="cdr.id", index=True)
    idempotency_key: str = Field(unique=True)
    provider: str
    amount: Decimal = _money()
    currency: str
    status: str
    provider_reference: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class Operator(SQLModel, table=True):
    """A person or system using the API."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    role: str = "operator"
    password_hash: str | None = None
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )


class ApiToken(SQLModel, table=True):
    """A bearer token of an operator; only its SHA-256 is kept."""

    __tablename__ = "api_token"

    id: int | None = Field(default=None, primary_key=True)
    operator_id: int = Field(foreign_key="operator.id", index=True)
    name: str = "default"
    token_hash: str = Field(unique=True)
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )
    last_used_at: datetime | None = _ts()


class CommandAudit(SQLModel, table=True):
    """Every command sent to a charger, who asked for it and what came back."""

    __tablename__ = "command_audit"

    id: str = Field(primary_key=True)
    charger_id: str = Field(index=True)
    command: str
    payload: dict[str, Any] = Field(sa_column=Column(JSON))
    requested_by: str
    outcome: str | None = None
    status: str | None = None
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), index=True)
    )
    completed_at: datetime | None = _ts()


class DeviceVariable(SQLModel, table=True):
    """One attribute of a 2.0.1 charger's device model, as last reported."""

    __tablename__ = "device_variable"

    __table_args__ = (
        UniqueConstraint(
            "charger_id",
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            name="device_variable_key",
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), primary_key=True),
    )
    charger_id: str = Field(foreign_key="charger.id", index=True)
    component: str
    component_instance: str = ""
    evse_id: int = 0
    connector_id: int = 0
    variable: str
    variable_instance: str = ""
    attribute_type: str = "Actual"
    value: str | None = None
    mutability: str | None = None
    persistent: bool | None = None
    constant: bool | None = None
    data_type: str | None = None
    unit: str | None = None
    report_id: int | None = None
    reported_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))


class SecurityEvent(SQLModel, table=True):
    """A SecurityEventNotification a charger sent (2.0.1, 1.6 security)."""

    __tablename__ = "security_event"

    __table_args__ = (
        UniqueConstraint(
            "charger_id", "event_type", "occurred_at", name="security_event_key"
        ),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger, Identity(), primary_key=True),
    )
    charger_id: str = Field(index=True)
    event_type: str
    tech_info: str | None = None
    occurred_at: datetime = Field(sa_column=Column(DateTime(timezone=True)))
    received_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True))
    )
