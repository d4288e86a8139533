"""What the API reads and returns; tables stay in ``store.models``.

Money and energy are decimals, serialised as strings so no precision is lost;
times are ISO 8601 in UTC.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

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
