"""Every operator command, round trip, against real chargers of both versions.

Real stack, real ``ocpp`` chargers: each route goes out as a ChargerCommand
workflow, through the gateway, to a charger that keeps every call as it came
over the wire. Each test checks the exact call of the charger's version, the
API's answer and the command audit. Reservations, firmware and log uploads
are in ``test_api_charger_operations``.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.integration.api_support import assert_problem
from tests.integration.charger import connected
from tests.integration.stack import Stack
from tests.integration.test_charge_session import eventually

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 10.0
PROFILE = {
    "connector_id": 1,
    "id": 7,
    "stack_level": 1,
    "purpose": "TxDefaultProfile",
    "kind": "Absolute",
    "schedule": {
        "charging_rate_unit": "A",
        "start_schedule": "2026-12-01T08:00:00Z",
        "periods": [
            {"start_period": 0, "limit": "16"},
            {"start_period": 3600, "limit": 8.5, "number_phases": 3},
        ],
    },
}
PERIODS = [
    {"startPeriod": 0, "limit": 16.0},
    {"startPeriod": 3600, "limit": 8.5, "numberPhases": 3},
]
SCHEDULE = {
    "startSchedule": "2026-12-01T08:00:00Z",
    "chargingRateUnit": "A",
    "chargingSchedulePeriod": PERIODS,
}


@dataclass(frozen=True)
class Case:
    """One route, and the call each version's charger must receive."""

    method: str
    path: str
    body: dict[str, Any] | None
    sent: dict[str, tuple[str, dict[str, Any]]]
    status: str | None = "Accepted"
    answer: dict[str, Any] | None = None  # the charger's payload, if checked
    triggered: str | None = None  # the message the charger then sends
    params: dict[str, Any] = field(default_factory=dict)


def both(action: str, payload: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    return {"1.6": (action, payload), "2.0.1": (action, payload)}


CASES = {
    "reset-soft": Case(
        "POST",
        "reset",
        {"type": "soft"},
        {"1.6": ("Reset", {"type": "Soft"}), "2.0.1": ("Reset", {"type": "OnIdle"})},
        answer={"status": "Accepted"},
    ),
    "reset-hard": Case(
        "POST",
        "reset",
        {"type": "hard"},
        {"1.6": ("Reset", {"type": "Hard"}), "2.0.1": ("Reset", {"type": "Immediate"})},
    ),
    "availability-connector": Case(
        "POST",
        "availability",
        {"connector_id": 1, "operative": False},
        {
            "1.6": ("ChangeAvailability", {"connectorId": 1, "type": "Inoperative"}),
            "2.0.1": (
                "ChangeAvailability",
                {"operationalStatus": "Inoperative", "evse": {"id": 1}},
            ),
        },
    ),
    "availability-charger": Case(
        "POST",
        "availability",
        {"operative": True},
        {
            "1.6": ("ChangeAvailability", {"connectorId": 0, "type": "Operative"}),
            "2.0.1": ("ChangeAvailability", {"operationalStatus": "Operative"}),
        },
    ),
    "unlock": Case(
        "POST",
        "unlock",
        {"connectorId": 2},
        {
            "1.6": ("UnlockConnector", {"connectorId": 2}),
            "2.0.1": ("UnlockConnector", {"evseId": 2, "connectorId": 1}),
        },
        status="Unlocked",
    ),
    "trigger-status": Case(
        "POST",
        "trigger",
        {"message": "StatusNotification", "connector_id": 1},
        {
            "1.6": (
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "connectorId": 1},
            ),
            "2.0.1": (
                "TriggerMessage",
                {"requestedMessage": "StatusNotification", "evse": {"id": 1}},
            ),
        },
        triggered="StatusNotification",
    ),
    "trigger-log-status": Case(
        "POST",
        "trigger",
        {"message": "LogStatusNotification"},
        {
            "1.6": (
                "TriggerMessage",
                {"requestedMessage": "DiagnosticsStatusNotification"},
            ),
            "2.0.1": ("TriggerMessage", {"requestedMessage": "LogStatusNotification"}),
        },
        triggered="any",
    ),
    "clear-cache": Case("POST", "clear-cache", None, both("ClearCache", {})),
    "data-transfer": Case(
        "POST",
        "data-transfer",
        {"vendorId": "moovolt-tests", "messageId": "echo", "data": "hello"},
        both(
            "DataTransfer",
            {"vendorId": "moovolt-tests", "messageId": "echo", "data": "hello"},
        ),
        answer={"status": "Accepted", "data": "hello"},
    ),
    "local-list-version": Case(
        "GET",
        "local-list",
        None,
        both("GetLocalListVersion", {}),
        status=None,
    ),
    "send-local-list": Case(
        "POST",
        "local-list",
        {
            "version": 3,
            "updateType": "Full",
            "tokens": [
                {
                    "idToken": "TAG-OK",
                    "status": "Accepted",
                    "expiresAt": "2027-01-01T00:00:00Z",
                },
                {
                    "id_token": "TAG-BLOCKED",
                    "status": "Blocked",
                    "parent_id_token": "P",
                },
            ],
        },
        {
            "1.6": (
                "SendLocalList",
                {
                    "listVersion": 3,
                    "updateType": "Full",
                    "localAuthorizationList": [
                        {
                            "idTag": "TAG-OK",
                            "idTagInfo": {
                                "status": "Accepted",
                                "expiryDate": "2027-01-01T00:00:00Z",
                            },
                        },
                        {
                            "idTag": "TAG-BLOCKED",
                            "idTagInfo": {"status": "Blocked", "parentIdTag": "P"},
                        },
                    ],
                },
            ),
            "2.0.1": (
                "SendLocalList",
                {
                    "versionNumber": 3,
                    "updateType": "Full",
                    "localAuthorizationList": [
                        {
                            "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
                            "idTokenInfo": {
                                "status": "Accepted",
                                "cacheExpiryDateTime": "2027-01-01T00:00:00Z",
                            },
                        },
                        {
                            "idToken": {"idToken": "TAG-BLOCKED", "type": "ISO14443"},
                            "idTokenInfo": {
                                "status": "Blocked",
                                "groupIdToken": {"idToken": "P", "type": "ISO14443"},
                            },
                        },
                    ],
                },
            ),
        },
    ),
    "set-charging-profile": Case(
        "POST",
        "charging-profiles",
        PROFILE,
        {
            "1.6": (
                "SetChargingProfile",
                {
                    "connectorId": 1,
                    "csChargingProfiles": {
                        "chargingProfileId": 7,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Absolute",
                        "chargingSchedule": SCHEDULE,
                    },
                },
            ),
            "2.0.1": (
                "SetChargingProfile",
                {
                    "evseId": 1,
                    "chargingProfile": {
                        "id": 7,
                        "stackLevel": 1,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Absolute",
                        "chargingSchedule": [{"id": 7, **SCHEDULE}],
                    },
                },
            ),
        },
    ),
}


@pytest.fixture
async def api(stack: Stack, api_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    ) as client:
        yield client


async def audits(stack: Stack, charger_id: str, count: int = 1) -> list[dict[str, Any]]:
    """Return the charger's ``count`` audited commands once all are settled."""

    async def settled() -> list[dict[str, Any]] | None:
        rows = await stack.sql(
            "SELECT * FROM command_audit WHERE charger_id = $1 AND outcome IS NOT NULL"
            " ORDER BY created_at",
            charger_id,
        )
        found = [{**row, "payload": json.loads(row["payload"])} for row in rows]
        return found if len(found) >= count else None

    return await eventually(settled, WAIT_S)


async def send(api: httpx.AsyncClient, charger_id: str, case: Case) -> httpx.Response:
    return await api.request(
        case.method,
        f"/chargers/{charger_id}/{case.path}",
        json=case.body,
        params=case.params,
    )


@pytest.mark.parametrize("name", list(CASES))
async def test_command_round_trip(
    stack: Stack,
    charger_id: str,
    ocpp_version: str,
    api: httpx.AsyncClient,
    name: str,
) -> None:
    case = CASES[name]
    action, payload = case.sent[ocpp_version]
    triggered = None
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        response = await send(api, charger_id, case)
        if case.triggered is not None:
            triggered = await asyncio.wait_for(cp.triggered.get(), WAIT_S)

    assert response.status_code == 200, response.text
    body = response.json()
    assert [(r.action, r.payload) for r in cp.received] == [(action, payload)]
    assert (body["action"], body["ocpp_version"]) == (action, ocpp_version)
    assert (body["outcome"], body["status"]) == ("answered", case.status)
    assert body["workflow_id"].startswith("command-")
    if case.answer is not None:
        assert body["payload"] == case.answer
    if case.triggered not in (None, "any"):
        assert triggered == case.triggered

    [audit] = await audits(stack, charger_id)
    assert audit["payload"] == {
        "kind": "ocpp_call",
        "action": action,
        "payload": payload,
    }
    assert (audit["outcome"], audit["status"], audit["requested_by"]) == (
        "answered",
        case.status,
        "tests",
    )


async def test_local_list_versions(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    path = f"/chargers/{charger_id}/local-list"
    token = {"idToken": "TAG-OK", "status": "Accepted"}
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        before = await api.get(path)
        full = await api.post(
            path, json={"version": 5, "updateType": "Full", "tokens": [token]}
        )
        after = await api.get(path)
        stale = await api.post(
            path,
            json={
                "version": 4,
                "updateType": "Differential",
                "tokens": [{"idToken": "TAG-OK"}],
            },
        )

    assert before.status_code == 200, before.text
    assert full.status_code == 200, full.text
    assert after.status_code == 200, after.text
    assert (before.json()["version"], after.json()["version"]) == (0, 5)
    problem = assert_problem(stale, 409)
    assert problem["type"] == "urn:moovolt:problem:rejected-by-charger"
    assert problem["answer"]["status"] == "VersionMismatch"
    assert list(cp.local_list) == ["TAG-OK"]


async def test_smart_charging_profile_schedule_and_clear(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    base = f"/chargers/{charger_id}"
    query: dict[str, Any] = {
        "connector_id": 1,
        "duration": 600,
        "charging_rate_unit": "A",
    }
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        profile = await api.post(f"{base}/charging-profiles", json=PROFILE)
        by_get = await api.get(f"{base}/composite-schedule", params=query)
        by_post = await api.post(f"{base}/composite-schedule", json=query)
        cleared = await api.delete(f"{base}/charging-profiles", params={"id": 7})
        empty = await api.get(f"{base}/composite-schedule", params=query)
        again = await api.delete(f"{base}/charging-profiles", params={"id": 7})

    assert profile.status_code == 200, profile.text
    for answer in (by_get, by_post):
        assert answer.status_code == 200, answer.text
        schedule = answer.json()["schedule"]
        assert schedule["schedule_start"]
        assert {k: v for k, v in schedule.items() if k != "schedule_start"} == {
            "connector_id": 1,
            "duration": 600,
            "charging_rate_unit": "A",
            "periods": [
                {"start_period": 0, "limit": "16.0", "number_phases": None},
                {"start_period": 3600, "limit": "8.5", "number_phases": 3},
            ],
        }
    asked = {
        "1.6": {"connectorId": 1, "duration": 600, "chargingRateUnit": "A"},
        "2.0.1": {"duration": 600, "chargingRateUnit": "A", "evseId": 1},
    }[ocpp_version]
    assert cp.calls_of("GetCompositeSchedule") == [asked, asked, asked]

    assert cleared.status_code == 200, cleared.text
    clear = {"1.6": {"id": 7}, "2.0.1": {"chargingProfileId": 7}}[ocpp_version]
    assert cp.calls_of("ClearChargingProfile") == [clear, clear]
    assert assert_problem(empty, 409)["answer"]["status"] == "Rejected"
    assert assert_problem(again, 409)["answer"]["status"] == "Unknown"
    assert [a["status"] for a in await audits(stack, charger_id, 6)] == [
        "Accepted",
        "Accepted",
        "Accepted",
        "Accepted",
        "Rejected",
        "Unknown",
    ]


async def test_a_refusal_is_409_with_the_answer_and_audited(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        cp.answers["Reset"] = "Rejected"
        response = await api.post(
            f"/chargers/{charger_id}/reset", json={"type": "hard"}
        )

    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:moovolt:problem:rejected-by-charger"
    assert (problem["answer"]["outcome"], problem["answer"]["status"]) == (
        "answered",
        "Rejected",
    )
    assert problem["action"] == "Reset"
    assert problem["workflow_id"].startswith("command-")
    [audit] = await audits(stack, charger_id)
    assert (audit["outcome"], audit["status"]) == ("answered", "Rejected")


async def test_an_offline_charger_is_409_and_audited(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()

    async def gone() -> bool:
        rows = await stack.sql(
            "SELECT connected FROM charger WHERE id = $1", charger_id
        )
        return not rows[0]["connected"]

    await eventually(gone, WAIT_S)
    response = await api.post(f"/chargers/{charger_id}/clear-cache")

    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:moovolt:problem:charger-offline"
    [audit] = await audits(stack, charger_id)
    assert audit["payload"]["action"] == "ClearCache"
    assert audit["outcome"] in ("offline", "disconnected")


async def test_a_charger_that_never_connected_is_offline(
    charger_id: str, api: httpx.AsyncClient, stack: Stack
) -> None:
    response = await api.post(f"/chargers/{charger_id}/reset", json={"type": "soft"})

    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:moovolt:problem:charger-offline"
    assert problem["reason"] == "never connected"
    unknown = await api.post("/chargers/no-such-charger/reset", json={"type": "soft"})
    assert_problem(unknown, 404)


@pytest.mark.parametrize(
    ("version", "path", "body"),
    [
        ("1.6", "trigger", {"message": "TransactionEvent"}),
        ("1.6", "data-transfer", {"vendorId": "moovolt-tests", "data": {"a": 1}}),
        ("1.6", "unlock", {"connector_id": 1, "evse_connector_id": 1}),
        (
            "1.6",
            "local-list",
            {
                "version": 1,
                "updateType": "Full",
                "tokens": [{"idToken": "TAG-OK", "status": "NoCredit"}],
            },
        ),
        (
            "2.0.1",
            "charging-profiles",
            {
                **PROFILE,
                "purpose": "ChargePointMaxProfile",
                "connector_id": 0,
                "transaction_id": None,
            },
        ),
    ],
    ids=["trigger", "data", "evse-connector", "status", "purpose-mapped"],
)
async def test_what_a_version_has_no_place_for(
    stack: Stack,
    charger_id: str,
    api: httpx.AsyncClient,
    version: str,
    path: str,
    body: dict[str, Any],
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, version) as cp:
        await cp.boot()
        response = await api.post(f"/chargers/{charger_id}/{path}", json=body)

    if path == "charging-profiles":
        # Not a mismatch: ChargePointMaxProfile is 2.0.1's ChargingStationMaxProfile.
        assert response.status_code == 200, response.text
        [sent] = cp.calls_of("SetChargingProfile")
        purpose = sent["chargingProfile"]["chargingProfilePurpose"]
        assert purpose == "ChargingStationMaxProfile"
        return
    problem = assert_problem(response, 409)
    assert problem["type"] == "urn:moovolt:problem:wrong-ocpp-version"
    assert cp.received == []


async def test_commands_need_the_operator_role(
    stack: Stack, charger_id: str, viewer_token: str
) -> None:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {viewer_token}"},
        timeout=30,
    ) as viewer:
        response = await viewer.post(
            f"/chargers/{charger_id}/reset", json={"type": "soft"}
        )
    assert_problem(response, 403)
