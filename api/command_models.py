"""The charger commands an operator sends, and the OCPP call each becomes.

One model per operator intent, the same for both OCPP versions; ``call``
renders it as the call of the charger's version, so the routes never branch
on the version and the mapping is testable without a network. Field names
are snake_case or camelCase on input, snake_case on output. Where the
versions differ:

* reset ``soft`` is 1.6 Soft / 2.0.1 OnIdle (wait for transactions to end),
  ``hard`` is 1.6 Hard / 2.0.1 Immediate;
* ``connector_id`` is the 1.6 connector or the 2.0.1 EVSE (0: the whole
  charger), ``evse_connector_id`` the 2.0.1 connector within the EVSE;
* trigger ``DiagnosticsStatusNotification`` and ``LogStatusNotification``
  are one message (1.6 / 2.0.1 names);
* local list entries become 1.6 ``idTagInfo`` or 2.0.1 ``idTokenInfo``
  (``expires_at`` is expiryDate / cacheExpiryDateTime, ``parent_id_token``
  parentIdTag / groupIdToken, ``token_type`` 2.0.1 only, ISO14443 if left
  out).

A field the charger's version has no place for is a 409
``wrong-ocpp-version`` problem, never silently dropped. Charging profiles
are in ``api.smart_charging_models``, reservations, firmware and logs in
``api.operation_models``.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from api.models import CommandAnswer
from api.problems import ProblemError
from bus.contract import OcppCall, OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201
Payload = dict[str, Any]

IdTokenType = Literal[
    "Central",
    "eMAID",
    "ISO14443",
    "ISO15693",
    "KeyCode",
    "Local",
    "MacAddress",
    "NoAuthorization",
]
DEFAULT_TOKEN_TYPE = "ISO14443"
# 1.6 idTag and parentIdTag are at most this long (2.0.1: 36).
ID_TAG_16 = 20
Uri = Annotated[
    str,
    Field(min_length=8, max_length=512, pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*://\S+$"),
]


def iso(moment: datetime) -> str:
    """Return ``moment`` as an OCPP date-time in UTC."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def not_in(version: OcppVersion, what: str) -> ProblemError:
    """Return the problem of a field or value the version has no place for."""
    return ProblemError(
        409,
        "wrong OCPP version",
        f"OCPP {version.value} has no {what}.",
        kind="wrong-ocpp-version",
        ocpp_version=version.value,
    )


def invalid(field: str, message: str) -> ProblemError:
    """Return a 422 problem for one field, as request validation words it."""
    return ProblemError(
        422,
        "Invalid request",
        f"{field}: {message}",
        kind="invalid-request",
        errors=[
            {
                "field": field,
                "location": ["body", *field.split(".")],
                "message": message,
                "type": "value_error",
            }
        ],
    )


def present(**fields: Any) -> Payload:
    """Return ``fields`` without those left out (None)."""
    return {name: value for name, value in fields.items() if value is not None}


def _evse(evse_id: int | None, connector_id: int | None) -> Payload | None:
    """Return a 2.0.1 EVSEType, or None for the whole charger (EVSE 0).

    Raises:
        ProblemError: 422 for a connector without its EVSE.
    """
    if evse_id:
        return present(id=evse_id, connectorId=connector_id)
    if connector_id is not None:
        raise invalid("evseConnectorId", "a connector needs its EVSE (connectorId)")
    return None


class RequestBody(BaseModel):
    """A request body: snake_case or camelCase field names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class CommandBody(RequestBody):
    """One operator intent; ``call`` gives the call of a version.

    ``OK`` are the answers that mean the charger did it (None: an answer
    without a status); any other answer is a 409 problem carrying it.
    """

    ACTION: ClassVar[str]
    OK: ClassVar[frozenset[str | None]] = frozenset({"Accepted"})

    def call(self, version: OcppVersion) -> OcppCall:
        """Return the OCPP call of ``version`` for this command.

        Raises:
            ProblemError: 409 when a field has no place in ``version``.
        """
        render: dict[OcppVersion, Callable[[], Payload]] = {
            V16: self.v16,
            V201: self.v201,
        }
        return OcppCall(action=self.ACTION, payload=render[version]())

    def v16(self) -> Payload:
        return {}

    def v201(self) -> Payload:
        return {}


class ResetCreate(CommandBody):
    """Restart the charger (Reset)."""

    ACTION = "Reset"
    OK = frozenset({"Accepted", "Scheduled"})
    TYPES: ClassVar[dict[str, tuple[str, str]]] = {
        "soft": ("Soft", "OnIdle"),
        "hard": ("Hard", "Immediate"),
    }

    type: Literal["soft", "hard"] = Field(
        description="soft: 1.6 Soft, 2.0.1 OnIdle (once no transaction runs); "
        "hard: 1.6 Hard, 2.0.1 Immediate."
    )

    def v16(self) -> Payload:
        return {"type": self.TYPES[self.type][0]}

    def v201(self) -> Payload:
        return {"type": self.TYPES[self.type][1]}


class AvailabilityChange(CommandBody):
    """Make a connector, an EVSE or the charger (in)operative (ChangeAvailability)."""

    ACTION = "ChangeAvailability"
    OK = frozenset({"Accepted", "Scheduled"})

    connector_id: int = Field(default=0, ge=0, description="0: the whole charger.")
    evse_connector_id: int | None = Field(default=None, ge=1, description="2.0.1.")
    operative: bool

    @property
    def _kind(self) -> str:
        return "Operative" if self.operative else "Inoperative"

    def v16(self) -> Payload:
        if self.evse_connector_id is not None:
            raise not_in(V16, "connectors within an EVSE (evse_connector_id)")
        return {"connectorId": self.connector_id, "type": self._kind}

    def v201(self) -> Payload:
        return present(
            operationalStatus=self._kind,
            evse=_evse(self.connector_id, self.evse_connector_id),
        )


class UnlockCreate(CommandBody):
    """Unlock a connector's cable (UnlockConnector)."""

    ACTION = "UnlockConnector"
    OK = frozenset({"Unlocked"})

    connector_id: int = Field(ge=1)
    evse_connector_id: int | None = Field(
        default=None, ge=1, description="2.0.1; 1 if left out."
    )

    def v16(self) -> Payload:
        if self.evse_connector_id is not None:
            raise not_in(V16, "connectors within an EVSE (evse_connector_id)")
        return {"connectorId": self.connector_id}

    def v201(self) -> Payload:
        return {"evseId": self.connector_id, "connectorId": self.evse_connector_id or 1}


# Triggerable message -> its name in 1.6 and in 2.0.1 (None: not in it).
TRIGGERS: dict[str, tuple[str | None, str | None]] = {
    "BootNotification": ("BootNotification", "BootNotification"),
    "Heartbeat": ("Heartbeat", "Heartbeat"),
    "MeterValues": ("MeterValues", "MeterValues"),
    "StatusNotification": ("StatusNotification", "StatusNotification"),
    "FirmwareStatusNotification": (
        "FirmwareStatusNotification",
        "FirmwareStatusNotification",
    ),
    "DiagnosticsStatusNotification": (
        "DiagnosticsStatusNotification",
        "LogStatusNotification",
    ),
    "LogStatusNotification": ("DiagnosticsStatusNotification", "LogStatusNotification"),
    "TransactionEvent": (None, "TransactionEvent"),
    "SignChargingStationCertificate": (None, "SignChargingStationCertificate"),
    "SignV2GCertificate": (None, "SignV2GCertificate"),
    "SignCombinedCertificate": (None, "SignCombinedCertificate"),
    "PublishFirmwareStatusNotification": (None, "PublishFirmwareStatusNotification"),
}
TriggerName = Literal[
    "BootNotification",
    "Heartbeat",
    "MeterValues",
    "StatusNotification",
    "FirmwareStatusNotification",
    "DiagnosticsStatusNotification",
    "LogStatusNotification",
    "TransactionEvent",
    "SignChargingStationCertificate",
    "SignV2GCertificate",
    "SignCombinedCertificate",
    "PublishFirmwareStatusNotification",
]


class TriggerCreate(CommandBody):
    """Have the charger send a message now (TriggerMessage)."""

    ACTION = "TriggerMessage"

    message: TriggerName
    connector_id: int | None = Field(default=None, ge=0)
    evse_connector_id: int | None = Field(default=None, ge=1, description="2.0.1.")

    def v16(self) -> Payload:
        name = TRIGGERS[self.message][0]
        if name is None:
            raise not_in(V16, f"{self.message} to trigger")
        if self.evse_connector_id is not None:
            raise not_in(V16, "connectors within an EVSE (evse_connector_id)")
        return present(requestedMessage=name, connectorId=self.connector_id)

    def v201(self) -> Payload:
        return present(
            requestedMessage=TRIGGERS[self.message][1],
            evse=_evse(self.connector_id, self.evse_connector_id),
        )


class ClearCacheCommand(CommandBody):
    """Empty the charger's authorization cache (ClearCache)."""

    ACTION = "ClearCache"


class DataTransferCreate(CommandBody):
    """Send vendor-specific data (DataTransfer)."""

    ACTION = "DataTransfer"

    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(default=None, max_length=50)
    data: Any = Field(
        default=None, description="A string in 1.6; any JSON value in 2.0.1."
    )

    def v16(self) -> Payload:
        if self.data is not None and not isinstance(self.data, str):
            raise not_in(V16, "DataTransfer data other than a string")
        return self.v201()

    def v201(self) -> Payload:
        return present(
            vendorId=self.vendor_id, messageId=self.message_id, data=self.data
        )


class LocalListVersionCommand(CommandBody):
    """Ask for the version of the charger's local list (GetLocalListVersion)."""

    ACTION = "GetLocalListVersion"
    OK = frozenset({None})


AuthorizationStatus = Literal[
    "Accepted",
    "Blocked",
    "ConcurrentTx",
    "Expired",
    "Invalid",
    "NoCredit",
    "NotAllowedTypeEVSE",
    "NotAtThisLocation",
    "NotAtThisTime",
    "Unknown",
]
STATUSES_16 = frozenset({"Accepted", "Blocked", "ConcurrentTx", "Expired", "Invalid"})


class LocalListEntry(RequestBody):
    """One id token of a local list; without ``status``, a removal."""

    id_token: str = Field(min_length=1, max_length=36)
    status: AuthorizationStatus | None = None
    expires_at: AwareDatetime | None = None
    parent_id_token: str | None = Field(default=None, min_length=1, max_length=36)
    token_type: IdTokenType | None = Field(
        default=None, description=f"2.0.1; {DEFAULT_TOKEN_TYPE} if left out."
    )

    def v16(self, index: int) -> Payload:
        if self.token_type is not None:
            raise not_in(V16, "id token types (token_type)")
        for name in ("id_token", "parent_id_token"):
            value = getattr(self, name)
            if value is not None and len(value) > ID_TAG_16:
                raise invalid(
                    f"tokens.{index}.{to_camel(name)}",
                    f"OCPP 1.6 id tags have at most {ID_TAG_16} characters",
                )
        if self.status is not None and self.status not in STATUSES_16:
            raise not_in(V16, f"authorization status {self.status}")
        info = None
        if self.status is not None:
            info = present(
                status=self.status,
                expiryDate=iso(self.expires_at) if self.expires_at else None,
                parentIdTag=self.parent_id_token,
            )
        return present(idTag=self.id_token, idTagInfo=info)

    def v201(self) -> Payload:
        kind = self.token_type or DEFAULT_TOKEN_TYPE
        info = None
        if self.status is not None:
            group = None
            if self.parent_id_token is not None:
                group = {"idToken": self.parent_id_token, "type": kind}
            info = present(
                status=self.status,
                cacheExpiryDateTime=iso(self.expires_at) if self.expires_at else None,
                groupIdToken=group,
            )
        return present(
            idToken={"idToken": self.id_token, "type": kind}, idTokenInfo=info
        )


class LocalListSend(CommandBody):
    """Replace or change the charger's local list (SendLocalList)."""

    ACTION = "SendLocalList"

    version: int = Field(ge=1, description="The list's version after the update.")
    update_type: Literal["Full", "Differential"]
    tokens: list[LocalListEntry] = Field(default_factory=list, max_length=1000)

    @model_validator(mode="after")
    def _full_lists_say_status(self) -> "LocalListSend":
        if self.update_type == "Full" and any(t.status is None for t in self.tokens):
            raise ValueError("every token of a Full list needs a status")
        return self

    def v16(self) -> Payload:
        entries = [token.v16(index) for index, token in enumerate(self.tokens)]
        return present(
            listVersion=self.version,
            updateType=self.update_type,
            localAuthorizationList=entries or None,
        )

    def v201(self) -> Payload:
        entries = [token.v201() for token in self.tokens]
        return present(
            versionNumber=self.version,
            updateType=self.update_type,
            localAuthorizationList=entries or None,
        )


# -- Answers -----------------------------------------------------------------------


class CommandPublic(CommandAnswer):
    """The charger's answer to one command."""

    workflow_id: str = Field(description="The ChargerCommand workflow that sent it.")
    action: str = Field(description="The OCPP call sent.")
    ocpp_version: str


class LocalListVersionPublic(CommandPublic):
    version: int | None = Field(
        description="The charger's list version: 0 no list, -1 (1.6) no support."
    )
