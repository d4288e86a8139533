"""Reservations, firmware updates and log uploads, against real chargers.

Each is a workflow that outlives its command: a reservation held until it is
cancelled, used by a start or expires; a firmware update and a log upload
followed through the charger's status notifications, which the ingress hands
over to the workflow. Each test runs with a 1.6 and a 2.0.1 charger.
"""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.integration.api_support import assert_problem
from tests.integration.charger import Charger, connected, iso
from tests.integration.stack import Stack
from tests.integration.test_charge_session import eventually
from workflows.types import CHARGER_ID

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 20.0


@pytest.fixture
async def api(stack: Stack, api_token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=stack.api_url,
        headers={"Authorization": f"Bearer {api_token}"},
        timeout=60,
    ) as client:
        yield client


def reserve_now(
    version: str, reservation_id: int, expires_at: str, connector: int = 1
) -> dict[str, Any]:
    """Return the ReserveNow a charger of ``version`` must receive."""
    if version == "1.6":
        return {
            "connectorId": connector,
            "expiryDate": expires_at,
            "idTag": "TAG-OK",
            "reservationId": reservation_id,
        }
    return {
        "id": reservation_id,
        "expiryDateTime": expires_at,
        "idToken": {"idToken": "TAG-OK", "type": "ISO14443"},
        "evseId": connector,
    }


async def reserve(
    api: httpx.AsyncClient, charger_id: str, seconds: float
) -> tuple[httpx.Response, str]:
    """Ask for a reservation of connector 1 for TAG-OK; return it and its expiry."""
    expires_at = iso(
        (datetime.now(UTC) + timedelta(seconds=seconds)).replace(microsecond=0)
    )
    response = await api.post(
        f"/chargers/{charger_id}/reservations",
        json={"connector_id": 1, "id_token": "TAG-OK", "expires_at": expires_at},
    )
    return response, expires_at


async def reservation_in(
    api: httpx.AsyncClient, reservation_id: int, state: str
) -> dict[str, Any]:
    """Wait until the reservation is in ``state``; return it."""

    async def probe() -> dict[str, Any] | None:
        response = await api.get(f"/reservations/{reservation_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["state"] == state else None

    return await eventually(probe, WAIT_S)


# -- Reservations ------------------------------------------------------------------


async def test_reservation_is_made_listed_and_cancelled(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        made, expires_at = await reserve(api, charger_id, 120)
        assert made.status_code == 201, made.text
        reservation = made.json()
        reservation_id = reservation["reservation_id"]

        async def listed(active: bool) -> list[dict[str, Any]] | None:
            response = await api.get(
                "/reservations", params={"charger_id": charger_id, "active": active}
            )
            assert response.status_code == 200, response.text
            items: list[dict[str, Any]] = response.json()["items"]
            return items or None

        [item] = await eventually(lambda: listed(True), WAIT_S)
        cancelled = await api.delete(f"/reservations/{reservation_id}")
        again = await api.delete(f"/reservations/{reservation_id}")
        [ended] = await eventually(lambda: listed(False), WAIT_S)

    assert made.headers["location"] == f"/api/v1/reservations/{reservation_id}"
    workflow_id = f"reservation-{charger_id}-{reservation_id}"
    assert (reservation["workflow_id"], reservation["state"]) == (
        workflow_id,
        "Reserved",
    )
    assert (reservation["answer"]["status"], reservation["connector_id"]) == (
        "Accepted",
        1,
    )
    assert cp.calls_of("ReserveNow") == [
        reserve_now(ocpp_version, reservation_id, expires_at)
    ]
    assert (item["reservation_id"], item["state"], item["id_token"]) == (
        reservation_id,
        "Reserved",
        "TAG-OK",
    )

    assert cancelled.status_code == 200, cancelled.text
    assert (cancelled.json()["state"], cancelled.json()["reason"]) == (
        "Cancelled",
        "cancelled by tests",
    )
    assert cp.calls_of("CancelReservation") == [{"reservationId": reservation_id}]
    assert (ended["reservation_id"], ended["state"]) == (reservation_id, "Cancelled")
    problem = assert_problem(again, 409)
    assert (problem["type"], problem["state"]) == (
        "urn:moovolt:problem:reservation-not-active",
        "Cancelled",
    )

    described = await stack.temporal.get_workflow_handle(workflow_id).describe()
    assert described.typed_search_attributes.get(CHARGER_ID) == charger_id
    rows = await stack.sql(
        "SELECT status FROM command_audit WHERE charger_id = $1 AND outcome IS NOT NULL"
        " ORDER BY created_at",
        charger_id,
    )
    assert [row["status"] for row in rows] == ["Accepted", "Accepted"]


async def test_reservation_expires(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        made, _ = await reserve(api, charger_id, 3)
        assert made.status_code == 201, made.text
        reservation_id = made.json()["reservation_id"]
        expired = await reservation_in(api, reservation_id, "Expired")
        if ocpp_version == "2.0.1":
            notified = await asyncio.wait_for(cp.notified.get(), WAIT_S)
            assert notified == ("ReservationStatusUpdate", "Expired")

    ended_at = datetime.fromisoformat(expired["ended_at"])
    assert ended_at >= datetime.fromisoformat(expired["expires_at"])
    described = await stack.temporal.get_workflow_handle(
        made.json()["workflow_id"]
    ).describe()
    assert described.status is WorkflowExecutionStatus.COMPLETED


async def test_reservation_is_used_by_a_start(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        made, _ = await reserve(api, charger_id, 120)
        assert made.status_code == 201, made.text
        reservation_id = made.json()["reservation_id"]
        transaction_id, verdict = await cp.start_transaction(
            1, "TAG-OK", datetime.now(UTC)
        )
        used = await reservation_in(api, reservation_id, "Used")

    assert verdict == "Accepted"
    # Long before its expiry: the ingress handed the start over.
    assert (used["transaction_id"], used["reason"]) == (
        transaction_id,
        "transaction started",
    )
    assert cp.reservations == {}  # the start named it


async def test_a_refused_reservation_is_409_and_ends_rejected(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        cp.answers["ReserveNow"] = "Occupied"
        refused, _ = await reserve(api, charger_id, 120)

    problem = assert_problem(refused, 409)
    assert problem["type"] == "urn:moovolt:problem:rejected-by-charger"
    assert problem["answer"]["status"] == "Occupied"
    rejected = await reservation_in(api, problem["reservation_id"], "Rejected")
    assert rejected["reason"] == "Occupied"


# -- Firmware and logs -------------------------------------------------------------


async def operation_in(api: httpx.AsyncClient, path: str, state: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        response = await api.get(path)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["state"] == state else None

    return await eventually(probe, WAIT_S)


async def audited(stack: Stack, charger_id: str) -> list[tuple[str, str]]:
    """Return the action and outcome of the charger's audited commands."""

    async def settled() -> list[tuple[str, str]] | None:
        rows = await stack.sql(
            "SELECT payload->>'action' AS action, outcome FROM command_audit"
            " WHERE charger_id = $1 ORDER BY created_at",
            charger_id,
        )
        if not rows or any(row["outcome"] is None for row in rows):
            return None
        return [(row["action"], row["outcome"]) for row in rows]

    return await eventually(settled, WAIT_S)


async def notified(cp: Charger, count: int) -> list[tuple[str, str]]:
    return [await asyncio.wait_for(cp.notified.get(), WAIT_S) for _ in range(count)]


async def test_firmware_update_is_followed_to_installed(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    path = f"/chargers/{charger_id}/firmware"
    retrieve = "2026-12-01T08:00:00Z"
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        started = await api.post(
            path,
            json={
                "location": "https://firmware.example/cp-2.1.bin",
                "retrieve_at": retrieve,
                "retries": 2,
                "retry_interval_s": 30,
            },
        )
        sent = await notified(cp, 4)
        done = await operation_in(api, path, "Succeeded")

    assert started.status_code == 202, started.text
    body = started.json()
    assert body["state"] in ("InProgress", "Succeeded")
    assert body["workflow_id"] == f"firmware-{charger_id}"
    request_id = body["request_id"]
    [call] = cp.calls_of("UpdateFirmware")
    if ocpp_version == "1.6":
        assert request_id is None
        assert call == {
            "location": "https://firmware.example/cp-2.1.bin",
            "retrieveDate": retrieve,
            "retries": 2,
            "retryInterval": 30,
        }
        assert body["answer"] == {"outcome": "answered", "status": None, "payload": {}}
    else:
        assert call == {
            "requestId": request_id,
            "firmware": {
                "location": "https://firmware.example/cp-2.1.bin",
                "retrieveDateTime": retrieve,
            },
            "retries": 2,
            "retryInterval": 30,
        }
        assert body["answer"]["status"] == "Accepted"
    statuses = ["Downloading", "Downloaded", "Installing", "Installed"]
    assert [status for _, status in sent] == statuses
    assert [s["status"] for s in done["statuses"]] == statuses
    assert (done["status"], done["reason"]) == ("Installed", "Installed")
    assert await audited(stack, charger_id) == [("UpdateFirmware", "answered")]


async def test_firmware_update_without_final_status_times_out(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    path = f"/chargers/{charger_id}/firmware"
    update = {"location": "https://firmware.example/cp.bin", "timeout_s": 4}
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        cp.firmware_statuses = ("Downloading",)
        first = await api.post(path, json=update)
        second = await api.post(path, json=update)
        timed_out = await operation_in(api, path, "TimedOut")

    assert first.status_code == 202, first.text
    problem = assert_problem(second, 409)
    assert problem["type"] == "urn:moovolt:problem:operation-running"
    assert len(cp.calls_of("UpdateFirmware")) == 1
    assert timed_out["status"] == "Downloading"


async def test_log_upload_is_followed_to_uploaded(
    stack: Stack, charger_id: str, ocpp_version: str, api: httpx.AsyncClient
) -> None:
    path = f"/chargers/{charger_id}/logs"
    oldest, latest = "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"
    async with connected(stack.charger_url(charger_id), charger_id, ocpp_version) as cp:
        await cp.boot()
        started = await api.post(
            path,
            json={
                "location": "ftp://logs.example/upload/",
                "oldest": oldest,
                "latest": latest,
            },
        )
        await notified(cp, 2)
        done = await operation_in(api, path, "Succeeded")

    assert started.status_code == 202, started.text
    request_id = started.json()["request_id"]
    if ocpp_version == "1.6":
        assert cp.calls_of("GetDiagnostics") == [
            {
                "location": "ftp://logs.example/upload/",
                "startTime": oldest,
                "stopTime": latest,
            }
        ]
        assert started.json()["answer"]["payload"] == {
            "fileName": f"diagnostics-{charger_id}.log"
        }
    else:
        assert cp.calls_of("GetLog") == [
            {
                "logType": "DiagnosticsLog",
                "requestId": request_id,
                "log": {
                    "remoteLocation": "ftp://logs.example/upload/",
                    "oldestTimestamp": oldest,
                    "latestTimestamp": latest,
                },
            }
        ]
    assert [s["status"] for s in done["statuses"]] == ["Uploading", "Uploaded"]
    action = "GetDiagnostics" if ocpp_version == "1.6" else "GetLog"
    assert done["action"] == action
    assert await audited(stack, charger_id) == [(action, "answered")]
