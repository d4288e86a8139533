"""A charger's device model (2.0.1) and configuration (1.6) through the API.

Real stack, real chargers: GetBaseReport brings a NotifyReport in two parts
that the SG stores as the device model; GetVariables and SetVariables go out
as ChargerCommand workflows and come back as the charger answered them.
"""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.integration.charger import TestCharger, connected
from tests.integration.charger201 import TestCharger201, Variable
from tests.integration.stack import Stack
from tests.integration.test_charge_session import eventually
from workflows.types import CHARGER_ID

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

HEARTBEAT = ("OCPPCommCtrlr", "", 0, 0, "HeartbeatInterval", "")
# The columns of a stored attribute that come from the charger's report.
REPORTED = (
    "component",
    "component_instance",
    "evse_id",
    "connector_id",
    "variable",
    "variable_instance",
    "attribute_type",
    "value",
    "mutability",
    "persistent",
    "constant",
    "data_type",
    "unit",
    "report_id",
)


def ref(
    component: str,
    variable: str,
    *,
    evse: dict[str, int] | None = None,
    instance: str | None = None,
    variable_instance: str | None = None,
) -> dict[str, Any]:
    """Return an OCPP component and variable, as the API and the wire spell them."""
    component_ref: dict[str, Any] = {"name": component}
    if instance:
        component_ref["instance"] = instance
    if evse:
        component_ref["evse"] = evse
    variable_ref: dict[str, Any] = {"name": variable}
    if variable_instance:
        variable_ref["instance"] = variable_instance
    return {"component": component_ref, "variable": variable_ref}


def expected_rows(variables: list[Variable], request_id: int) -> list[dict[str, Any]]:
    """Return the stored attributes the charger's report should have become."""
    rows = [
        {
            "component": v.component,
            "component_instance": v.component_instance,
            "evse_id": v.evse_id or 0,
            "connector_id": v.connector_id or 0,
            "variable": v.variable,
            "variable_instance": v.variable_instance,
            "attribute_type": kind,
            "value": None if v.mutability == "WriteOnly" else value,
            "mutability": v.mutability,
            "persistent": True,
            "constant": False,
            "data_type": v.data_type,
            "unit": v.unit,
            "report_id": request_id,
        }
        for v in variables
        for kind, value in v.values.items()
    ]
    return sorted(rows, key=_row_key)


def _row_key(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(row[name] for name in REPORTED[:7])


@pytest.fixture
async def api(stack: Stack, api_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    ) as client:
        yield client


async def stored(api: httpx.AsyncClient, charger_id: str) -> list[dict[str, Any]]:
    """Return the stored device model through the API, in the API's order."""
    response = await api.get(f"/chargers/{charger_id}/variables", params={"limit": 500})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def report(api: httpx.AsyncClient, charger_id: str, cp: TestCharger201) -> int:
    """Have the charger report its whole device model; return the request id.

    Returns once every attribute is stored.
    """
    response = await api.post(
        f"/chargers/{charger_id}/reports", json={"reportBase": "FullInventory"}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["outcome"], body["status"]) == ("answered", "Accepted")
    request_id: int = body["request_id"]
    assert await asyncio.wait_for(cp.reports_sent.get(), 30) == request_id

    expected = expected_rows(list(cp.device_model.values()), request_id)

    async def all_stored() -> list[dict[str, Any]] | None:
        items = await stored(api, charger_id)
        return items if len(items) == len(expected) else None

    await eventually(all_stored)
    return request_id


async def test_base_report_is_stored_and_listed(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, "2.0.1") as cp:
        assert isinstance(cp, TestCharger201)
        await cp.boot()
        request_id = await report(api, charger_id, cp)
        variables = list(cp.device_model.values())

    items = await stored(api, charger_id)
    rows = [{name: item[name] for name in REPORTED} for item in items]
    # Both parts of the report (seqNo 0 with tbc, then 1) are in.
    assert sorted(rows, key=_row_key) == expected_rows(variables, request_id)
    assert len(rows) == 16
    assert all(item["reported_at"] for item in items)

    page = await api.get(
        f"/chargers/{charger_id}/variables", params={"limit": 5, "offset": 5}
    )
    assert page.status_code == 200, page.text
    assert page.json()["total"] == 16
    assert page.json()["items"] == items[5:10]

    per_evse = await api.get(
        f"/chargers/{charger_id}/variables",
        params={"component": "EVSE", "variable": "Power"},
    )
    assert per_evse.status_code == 200, per_evse.text
    assert [
        (i["evse_id"], i["attribute_type"], i["value"], i["unit"])
        for i in per_evse.json()["items"]
    ] == [(1, "Actual", "0", "W"), (1, "MaxSet", "22000", "W")]

    instances = await api.get(
        f"/chargers/{charger_id}/variables", params={"component": "DeviceDataCtrlr"}
    )
    assert instances.status_code == 200, instances.text
    assert [i["variable_instance"] for i in instances.json()["items"]] == [
        "GetVariables",
        "SetVariables",
    ]


async def test_get_variables_round_trip(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    asked = [
        ref("OCPPCommCtrlr", "HeartbeatInterval"),
        {**ref("EVSE", "Power", evse={"id": 1}), "attributeType": "MaxSet"},
        ref("Connector", "ConnectorType", evse={"id": 1, "connectorId": 1}),
        ref("DeviceDataCtrlr", "ItemsPerMessage", variable_instance="SetVariables"),
        ref("TokenReader", "Enabled", instance="Front"),
        ref("SecurityCtrlr", "BasicAuthPassword"),
        {**ref("SecurityCtrlr", "SecurityProfile"), "attributeType": "Target"},
        ref("NoSuchCtrlr", "Anything"),
        ref("SecurityCtrlr", "NoSuchVariable"),
    ]
    async with connected(stack.charger_url(charger_id), charger_id, "2.0.1") as cp:
        await cp.boot()
        response = await api.post(f"/chargers/{charger_id}/variables/get", json=asked)

    assert response.status_code == 200, response.text
    body = response.json()
    statuses = [
        ("Accepted", "300"),
        ("Accepted", "22000"),
        ("Accepted", "cType2"),
        ("Accepted", "20"),
        ("Accepted", "true"),
        ("Rejected", None),  # WriteOnly
        ("NotSupportedAttributeType", None),
        ("UnknownComponent", None),
        ("UnknownVariable", None),
    ]
    expected = []
    for item, (status, value) in zip(asked, statuses, strict=True):
        result = {
            "attributeStatus": status,
            "attributeType": item.get("attributeType", "Actual"),
            "component": item["component"],
            "variable": item["variable"],
        }
        if value is not None:
            result["attributeValue"] = value
        expected.append(result)
    assert body["results"] == expected

    handle = stack.temporal.get_workflow_handle(body["workflow_id"])
    described = await handle.describe()
    assert described.workflow_type == "ChargerCommand"
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.typed_search_attributes.get(CHARGER_ID) == charger_id

    async def audited() -> Any:
        rows = await stack.sql(
            "SELECT * FROM command_audit WHERE charger_id = $1 AND outcome IS NOT NULL",
            charger_id,
        )
        return rows or None

    [audit] = await eventually(audited)
    assert (audit["command"], audit["requested_by"], audit["outcome"]) == (
        "ocpp_call",
        "tests",
        "answered",
    )


async def test_set_variables_round_trip(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    asked = [
        {**ref("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "600"},
        {**ref("TokenReader", "Enabled", instance="Front"), "attributeValue": "maybe"},
        {**ref("ChargingStation", "Model"), "attributeValue": "Other"},
        {**ref("SecurityCtrlr", "BasicAuthPassword"), "attributeValue": "s3cret-pw"},
        {**ref("ChargingStation", "NoSuchVariable"), "attributeValue": "1"},
        {**ref("NoSuchCtrlr", "Anything"), "attributeValue": "1"},
    ]
    async with connected(stack.charger_url(charger_id), charger_id, "2.0.1") as cp:
        assert isinstance(cp, TestCharger201)
        await cp.boot()
        await report(api, charger_id, cp)
        before = await stored(api, charger_id)

        response = await api.post(f"/chargers/{charger_id}/variables/set", json=asked)
        assert response.status_code == 200, response.text
        read_back = await api.post(
            f"/chargers/{charger_id}/variables/get",
            json=[ref("OCPPCommCtrlr", "HeartbeatInterval")],
        )
        assert read_back.status_code == 200, read_back.text

    body = response.json()
    statuses = [
        "Accepted",
        "Rejected",  # not a boolean
        "Rejected",  # ReadOnly
        "Accepted",  # WriteOnly: taken, never shown
        "UnknownVariable",
        "UnknownComponent",
    ]
    assert body["results"] == [
        {
            "attributeStatus": status,
            "attributeType": "Actual",
            "component": item["component"],
            "variable": item["variable"],
        }
        for item, status in zip(asked, statuses, strict=True)
    ]
    assert body["stored"] == 1
    assert cp.device_model[HEARTBEAT].values["Actual"] == "600"
    assert read_back.json()["results"][0]["attributeValue"] == "600"

    after = await stored(api, charger_id)
    changed = [
        (old["component"], old["variable"], old["value"], new["value"])
        for old, new in zip(before, after, strict=True)
        if old != new
    ]
    assert changed == [("OCPPCommCtrlr", "HeartbeatInterval", "300", "600")]
    password = next(i for i in after if i["variable"] == "BasicAuthPassword")
    assert password["value"] is None


async def test_report_refused_by_charger(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, "2.0.1") as cp:
        assert isinstance(cp, TestCharger201)
        await cp.boot()
        cp.report_status = "NotSupported"
        response = await api.post(
            f"/chargers/{charger_id}/reports", json={"reportBase": "SummaryInventory"}
        )

    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["title"] == "rejected by charger"
    assert problem["answer"]["status"] == "NotSupported"
    assert isinstance(problem["request_id"], int)
    assert cp.reports_sent.empty()
    assert await stored(api, charger_id) == []


async def test_16_charger_uses_configuration_keys(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, "1.6") as cp:
        assert isinstance(cp, TestCharger)
        await cp.boot()
        refused = [
            await api.post(
                f"/chargers/{charger_id}/variables/get",
                json=[ref("OCPPCommCtrlr", "HeartbeatInterval")],
            ),
            await api.post(
                f"/chargers/{charger_id}/reports", json={"reportBase": "FullInventory"}
            ),
            await api.get(f"/chargers/{charger_id}/variables"),
        ]
        read = await api.post(
            f"/chargers/{charger_id}/configuration/get",
            json={"key": ["HeartbeatInterval", "NoSuchKey"]},
        )
        changed = await api.post(
            f"/chargers/{charger_id}/configuration/change",
            json={"key": "HeartbeatInterval", "value": "900"},
        )
        read_only = await api.post(
            f"/chargers/{charger_id}/configuration/change",
            json={"key": "NumberOfConnectors", "value": "4"},
        )

    for response in refused:
        assert response.status_code == 409, response.text
        assert response.json()["title"] == "wrong OCPP version"
        assert "GetConfiguration" in response.json()["detail"]
    assert read.status_code == 200, read.text
    assert read.json()["configuration_key"] == [
        {"key": "HeartbeatInterval", "readonly": False, "value": "300"}
    ]
    assert read.json()["unknown_key"] == ["NoSuchKey"]
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "Accepted"
    assert cp.configuration["HeartbeatInterval"] == (False, "900")
    assert read_only.status_code == 409, read_only.text
    assert read_only.json()["answer"]["status"] == "Rejected"
    assert cp.configuration["NumberOfConnectors"] == (True, "2")


async def test_201_charger_has_no_configuration_keys(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    await stack.sql(
        "UPDATE charger SET ocpp_version = '2.0.1' WHERE id = $1", charger_id
    )
    response = await api.post(f"/chargers/{charger_id}/configuration/get", json={})
    assert response.status_code == 409, response.text
    assert "GetVariables" in response.json()["detail"]


async def test_offline_charger(
    stack: Stack, charger_id: str, api: httpx.AsyncClient
) -> None:
    await stack.sql(
        "UPDATE charger SET ocpp_version = '2.0.1' WHERE id = $1", charger_id
    )
    responses = [
        await api.post(
            f"/chargers/{charger_id}/variables/get",
            json=[ref("OCPPCommCtrlr", "HeartbeatInterval")],
        ),
        await api.post(
            f"/chargers/{charger_id}/variables/set",
            json=[{**ref("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "5"}],
        ),
        await api.post(
            f"/chargers/{charger_id}/reports", json={"reportBase": "FullInventory"}
        ),
    ]
    for response in responses:
        assert response.status_code == 409, response.text
        assert response.json()["title"] == "charger offline"
        assert response.json()["workflow_id"].startswith("command-")
    audits = await stack.sql(
        "SELECT outcome FROM command_audit WHERE charger_id = $1", charger_id
    )
    assert [row["outcome"] for row in audits] == ["offline"] * 3


async def test_viewer_reads_but_cannot_command(
    stack: Stack, charger_id: str, viewer_token: str
) -> None:
    await stack.sql(
        "UPDATE charger SET ocpp_version = '2.0.1' WHERE id = $1", charger_id
    )
    async with httpx.AsyncClient(
        base_url=stack.api_url, headers={"Authorization": f"Bearer {viewer_token}"}
    ) as viewer:
        listed = await viewer.get(f"/chargers/{charger_id}/variables")
        commands = [
            await viewer.post(
                f"/chargers/{charger_id}/variables/set",
                json=[
                    {**ref("OCPPCommCtrlr", "HeartbeatInterval"), "attributeValue": "5"}
                ],
            ),
            await viewer.post(
                f"/chargers/{charger_id}/variables/get",
                json=[ref("OCPPCommCtrlr", "HeartbeatInterval")],
            ),
            await viewer.post(
                f"/chargers/{charger_id}/reports", json={"reportBase": "FullInventory"}
            ),
        ]
    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 0
    for response in commands:
        assert response.status_code == 403, response.text
    audits = await stack.sql(
        "SELECT id FROM command_audit WHERE charger_id = $1", charger_id
    )
    assert audits == []
