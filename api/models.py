"""What the API reads and returns; tables stay in ``store.models``.

Money and energy are decimals, serialised as strings so no precision is lost;
times are ISO 8601 in UTC, and a time given to the API must carry its offset.
Models of the resources added with their own route module (id tokens,
tariffs, payments, operators, the audit log) live in that module.
"""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from billing.tariff import Cost
from bus.contract import CommandOutcome, RegistrationStatus
from workflows.types import SessionProgress

# Bounds of the database's integer columns, so no id overflows a query.
MAX_INT = 2**31 - 1
MAX_BIGINT = 2**63 - 1


def no_nul(value: str | None) -> str | None:
    """Refuse text holding NUL, which PostgreSQL cannot store."""
    if value is not None and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _unset(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def unchanged(**constraints: Any) -> Any:
    """Return a field of an update model: left out means unchanged.

    Unlike ``None`` as a default, it documents no default and accepts no
    ``null``, for a column that cannot be empty.
    """
    return Field(default=None, json_schema_extra=_unset, **constraints)


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range once in UTC") from None


# Text the database can store (PostgreSQL refuses NUL characters).
Text = Annotated[str, AfterValidator(no_nul)]
# A time given to the API: with an offset, kept in UTC.
UtcDateTime = Annotated[AwareDatetime, AfterValidator(_utc)]
# A charge point id as a charger puts it in its URL: no "/", no spaces.
ChargerId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=48,
        pattern=r"^[A-Za-z0-9._~!$&'()*+,;=@-]+$",
        description="The charge point id chargers connect with "
        "(`/ocpp/<id>`): letters, digits and `._~!$&'()*+,;=@-`.",
    ),
]
# The HTTP Basic password of a charger (1.6 AuthorizationKey, 2.0.1
# BasicAuthPassword): 16 to 40 printable ASCII characters.
ChargerSecret = Annotated[str, Field(pattern=r"^[!-~]{16,40}$")]
SecurityProfile = Annotated[
    int,
    Field(
        ge=0,
        le=3,
        description="The OCPP security profile the charger must connect with: "
        "0 none, 1 HTTP Basic, 2 TLS and HTTP Basic, 3 TLS with a client "
        "certificate.",
    ),
]


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
    security_profile: int
    has_password: bool = Field(
        description="Whether the charger must present an HTTP Basic password."
    )
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


class ChargerCreate(BaseModel):
    """Register a charger, so that it may connect."""

    id: ChargerId
    registration_status: RegistrationStatus = Field(
        default=RegistrationStatus.ACCEPTED,
        description="What its BootNotification is answered.",
    )
    security_profile: SecurityProfile = 0
    tariff_id: int | None = Field(
        default=None, ge=1, le=MAX_INT, description="None: the default tariff."
    )
    password: ChargerSecret | None = Field(
        default=None,
        description="Its HTTP Basic password (profiles 1 and 2); only a hash "
        "is kept. Needed for profiles 1 and 2.",
    )


class ChargerUpdate(BaseModel):
    """Change a charger; fields left out stay as they are."""

    registration_status: RegistrationStatus = unchanged(
        description="Takes effect at its next BootNotification."
    )
    security_profile: SecurityProfile = unchanged(
        description="Takes effect at its next connection."
    )
    tariff_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INT,
        description="None: the default tariff. Sessions running keep theirs.",
    )


class ChargerPasswordSet(BaseModel):
    """Set a charger's HTTP Basic password; leave it out to have one made."""

    password: ChargerSecret | None = None
    push: bool = Field(
        default=True,
        description="Give the password to the charger first (1.6 "
        "ChangeConfiguration AuthorizationKey, 2.0.1 SetVariables "
        "SecurityCtrlr.BasicAuthPassword) and keep it only if the charger "
        "accepts; false only stores it, for a charger configured by hand.",
    )


class ChargerPasswordPublic(BaseModel):
    charger_id: str
    password: str | None = Field(
        description="The password made for you, shown once; None when you gave one."
    )
    charger_status: str | None = Field(
        default=None,
        description="The charger's answer when the password was pushed to it.",
    )


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
    id_token: str | None = Field(
        description="None while a 2.0.1 transaction waits for its id token."
    )
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
    tariff: dict[str, Any] | None = Field(
        description="The tariff as it was at the start; later edits do not apply."
    )
    cdr_id: str | None = Field(default=None, description="Its CDR, once billed.")
    cost: Cost | None = Field(
        default=None, description="The final cost, from its CDR, once billed."
    )
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


class MeterSeries(BaseModel):
    """The samples of one measurand, phase and location, oldest first."""

    measurand: str
    phase: str
    location: str
    unit: str
    sampled_at: list[datetime] = Field(description="The time of each value.")
    values: list[Decimal]


class MeterSeriesPublic(BaseModel):
    session_id: int
    series: list[MeterSeries]
    truncated: bool = Field(
        description="Whether samples beyond ``limit`` were left out."
    )


class CdrPublic(_Public):
    id: str
    session_id: int
    charger_id: str
    connector_id: int | None
    transaction_id: str | None
    id_token: str | None
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


# -- Device model (OCPP 2.0.1) and configuration (OCPP 1.6) ---------------------
#
# What mirrors an OCPP structure keeps OCPP's field names (camelCase) on the
# wire; snake_case is accepted on input too.

AttributeType = Literal["Actual", "Target", "MinSet", "MaxSet"]
ReportBase = Literal["FullInventory", "ConfigurationInventory", "SummaryInventory"]


class _Ocpp(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class EvseRef(_Ocpp):
    id: int = Field(ge=0)
    connector_id: int | None = Field(default=None, ge=0)


class ComponentRef(_Ocpp):
    name: str = Field(min_length=1, max_length=50)
    instance: str | None = Field(default=None, max_length=50)
    evse: EvseRef | None = None


class VariableRef(_Ocpp):
    name: str = Field(min_length=1, max_length=50)
    instance: str | None = Field(default=None, max_length=50)


class StatusInfo(_Ocpp):
    reason_code: str
    additional_info: str | None = None


class VariableGet(_Ocpp):
    """One attribute to read: a 2.0.1 GetVariableDataType."""

    component: ComponentRef
    variable: VariableRef
    attribute_type: AttributeType | None = Field(
        default=None, description="Leave out for Actual."
    )


class VariableSet(_Ocpp):
    """One attribute to write: a 2.0.1 SetVariableDataType."""

    component: ComponentRef
    variable: VariableRef
    attribute_type: AttributeType | None = Field(
        default=None, description="Leave out for Actual."
    )
    attribute_value: str = Field(max_length=1000)


class VariableGetResult(_Ocpp):
    """The charger's answer for one attribute: a 2.0.1 GetVariableResultType."""

    attribute_status: str
    attribute_type: str | None = None
    attribute_value: str | None = None
    component: ComponentRef
    variable: VariableRef
    attribute_status_info: StatusInfo | None = None


class VariableSetResult(_Ocpp):
    """The charger's answer for one attribute: a 2.0.1 SetVariableResultType."""

    attribute_status: str
    attribute_type: str | None = None
    component: ComponentRef
    variable: VariableRef
    attribute_status_info: StatusInfo | None = None


class VariablesGetPublic(BaseModel):
    workflow_id: str = Field(description="The ChargerCommand workflow that sent it.")
    results: list[VariableGetResult]


class VariablesSetPublic(BaseModel):
    workflow_id: str = Field(description="The ChargerCommand workflow that sent it.")
    results: list[VariableSetResult]
    stored: int = Field(
        description="How many stored device-model attributes took the new value."
    )


class DeviceVariablePublic(_Public):
    """One attribute of a charger's device model, as last reported or set."""

    component: str
    component_instance: str
    evse_id: int = Field(description="0 when the component is not on an EVSE.")
    connector_id: int
    variable: str
    variable_instance: str
    attribute_type: str
    value: str | None
    mutability: str | None
    persistent: bool | None
    constant: bool | None
    data_type: str | None
    unit: str | None
    report_id: int | None = Field(description="The report it last came in.")
    reported_at: datetime | None


class DeviceVariablePage(Page[DeviceVariablePublic]):
    pass


class ReportCreate(_Ocpp):
    """Ask a 2.0.1 charger for a base report of its device model."""

    report_base: ReportBase


class ReportPublic(CommandAnswer):
    request_id: int = Field(description="The requestId its NotifyReports carry.")
    workflow_id: str


class ConfigurationGet(BaseModel):
    """Ask a 1.6 charger for configuration keys (all when ``key`` is left out)."""

    key: list[Annotated[str, Field(max_length=50)]] | None = None


class ConfigurationKey(BaseModel):
    key: str
    readonly: bool
    value: str | None = None


class ConfigurationPublic(BaseModel):
    workflow_id: str
    configuration_key: list[ConfigurationKey]
    unknown_key: list[str]


class ConfigurationChange(BaseModel):
    """Set one configuration key of a 1.6 charger."""

    key: str = Field(min_length=1, max_length=50)
    value: str = Field(max_length=500)


class ConfigurationChangePublic(CommandAnswer):
    workflow_id: str
