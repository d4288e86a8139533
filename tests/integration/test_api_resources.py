"""The operator API's resources on the running stack, with real OCPP chargers.

Chargers, id tokens, tariffs, sessions, CDRs, payments and the audit log,
through the API process over HTTP (operators and their tokens are in
``test_api_roles``); what an operator changes is
checked where it takes effect: a charger's handshake and BootNotification,
an Authorize, a session's bill. Every test makes its own chargers, tokens
and tariffs; the one that moves the default tariff puts it back.
"""

import asyncio
import base64
import contextlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.integration.api_support import assert_problem, auth
from tests.integration.charger import TestCharger, connected, iso
from tests.integration.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T = TypeVar("T")
WAIT_S = 30.0


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def eventually(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = WAIT_S
) -> T:
    """Return the first non-empty result of ``probe``, polling until timeout."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = await probe()
            if result:
                return result
            await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the stack's API process, under ``/api/v1``."""
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=WAIT_S) as http:
        yield http


@pytest.fixture(scope="module")
def operator(api_token: str) -> dict[str, str]:
    """Headers of an operator."""
    return auth(api_token)


@pytest.fixture(scope="module")
def viewer(viewer_token: str) -> dict[str, str]:
    """Headers of a viewer."""
    return auth(viewer_token)


def field_of(response: httpx.Response) -> list[str]:
    """Return the fields a 422 problem names."""
    body = assert_problem(response, 422)
    return [error["field"] for error in body["errors"]]


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@contextlib.asynccontextmanager
async def charger(
    stack: Stack, charger_id: str, password: str | None = None
) -> AsyncIterator[TestCharger]:
    """Connect a 1.6 charger, with an HTTP Basic password if given."""
    headers = basic(charger_id, password) if password else {}
    async with websockets.connect(
        stack.charger_url(charger_id),
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers=headers,
    ) as ws:
        cp = TestCharger(charger_id, ws)
        loop = asyncio.create_task(cp.start())
        try:
            yield cp
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await loop


async def refused(stack: Stack, charger_id: str, password: str | None = None) -> int:
    """Return the HTTP status the gateway refuses a charger's handshake with."""
    headers = basic(charger_id, password) if password else {}
    with pytest.raises(InvalidStatus) as refusal:
        async with asyncio.timeout(WAIT_S):
            await websockets.connect(
                stack.charger_url(charger_id),
                subprotocols=["ocpp1.6"],  # type: ignore[list-item]
                additional_headers=headers,
            )
    return refusal.value.response.status_code


# -- chargers --------------------------------------------------------------------


async def test_charger_create_read_update_delete(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    charger_id = unique("cp")
    body = {
        "id": charger_id,
        "registration_status": "Pending",
        "security_profile": 1,
        "password": "sixteen-chars-ok",
    }
    created = await api.post("/chargers", json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1/chargers/{charger_id}"
    charger = created.json()
    assert charger["registration_status"] == "Pending"
    assert (charger["security_profile"], charger["has_password"]) == (1, True)
    assert (charger["status"], charger["connected"], charger["connectors"]) == (
        "Offline",
        False,
        [],
    )
    assert "password" not in charger
    assert "password_hash" not in charger

    again = await api.post("/chargers", json=body, headers=operator)
    problem = assert_problem(again, 409)
    assert problem["type"] == "urn:moovolt:problem:charger-exists"

    got = await api.get(f"/chargers/{charger_id}", headers=viewer)
    assert got.status_code == 200, got.text
    assert got.json() == charger

    changed = await api.patch(
        f"/chargers/{charger_id}",
        json={"registration_status": "Accepted", "security_profile": 0},
        headers=operator,
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["registration_status"] == "Accepted"
    assert changed.json()["security_profile"] == 0
    assert changed.json()["created_at"] == charger["created_at"]

    null = await api.patch(
        f"/chargers/{charger_id}", json={"registration_status": None}, headers=operator
    )
    assert field_of(null) == ["registration_status"]

    deleted = await api.delete(f"/chargers/{charger_id}", headers=operator)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await api.get(f"/chargers/{charger_id}", headers=viewer), 404)
    assert_problem(await api.delete(f"/chargers/{charger_id}", headers=operator), 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "has space"}, "id"),
        ({"id": "slash/inside"}, "id"),
        ({"id": "x" * 49}, "id"),
        ({"security_profile": 4}, "security_profile"),
        ({"security_profile": 2}, "password"),
        ({"password": "too-short"}, "password"),
        ({"registration_status": "Maybe"}, "registration_status"),
        ({"tariff_id": 2**31 - 1}, "tariff_id"),
        ({"tariff_id": 2**31}, "tariff_id"),
    ],
)
async def test_charger_validation_names_the_field(
    api: httpx.AsyncClient, operator: dict[str, str], change: Any, field: str
) -> None:
    body = {"id": unique("cp"), **change}
    response = await api.post("/chargers", json=body, headers=operator)
    assert field_of(response) == [field]


async def test_charger_list_filters_sorts_and_pages(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    prefix = unique("fleet")
    for suffix, status in (("a", "Accepted"), ("b", "Pending"), ("c", "Accepted")):
        created = await api.post(
            "/chargers",
            json={"id": f"{prefix}-{suffix}", "registration_status": status},
            headers=operator,
        )
        assert created.status_code == 201, created.text

    async def ids(query: str) -> tuple[int, list[str]]:
        response = await api.get(f"/chargers?q={prefix}&{query}", headers=viewer)
        assert response.status_code == 200, response.text
        page = response.json()
        return page["total"], [c["id"] for c in page["items"]]

    everything = [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    assert await ids("") == (3, everything)
    assert await ids("sort=-id") == (3, everything[::-1])
    assert await ids("limit=1&offset=1") == (3, [f"{prefix}-b"])
    assert await ids("registration_status=Pending") == (1, [f"{prefix}-b"])
    assert await ids("connected=true") == (0, [])
    assert await ids("connected=false&sort=-created_at") == (3, everything[::-1])

    # A prefix is a prefix, not a pattern.
    assert (await api.get("/chargers?q=%25", headers=viewer)).json()["total"] == 0

    bad = await api.get("/chargers?sort=password_hash", headers=viewer)
    assert field_of(bad) == ["sort"]


async def test_registration_and_password_hold_at_the_charger(
    stack: Stack, api: httpx.AsyncClient, operator: dict[str, str]
) -> None:
    charger_id = unique("cp")
    first = "first-password-16"
    created = await api.post(
        "/chargers",
        json={
            "id": charger_id,
            "registration_status": "Pending",
            "security_profile": 1,
            "password": first,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text

    assert await refused(stack, charger_id) == 401
    assert await refused(stack, charger_id, "wrong-password-16") == 401
    async with charger(stack, charger_id, first) as cp:
        assert (await cp.boot()).status == "Pending"
        accepted = await api.patch(
            f"/chargers/{charger_id}",
            json={"registration_status": "Accepted"},
            headers=operator,
        )
        assert accepted.status_code == 200, accepted.text
        assert (await cp.boot()).status == "Accepted"

    # Offline, so only stored (a charger configured by hand).
    rotated = await api.post(
        f"/chargers/{charger_id}/password", json={"push": False}, headers=operator
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["password"]
    assert len(second) == 40 and int(second, 16) >= 0

    assert await refused(stack, charger_id, first) == 401
    async with charger(stack, charger_id, second) as cp:
        assert (await cp.boot()).status == "Accepted"

    chosen = await api.post(
        f"/chargers/{charger_id}/password",
        json={"password": "chosen-password-1", "push": False},
        headers=operator,
    )
    assert chosen.json() == {
        "charger_id": charger_id,
        "password": None,
        "charger_status": None,
    }
    assert await refused(stack, charger_id, second) == 401
    async with charger(stack, charger_id, "chosen-password-1") as cp:
        assert (await cp.boot()).status == "Accepted"


# -- id tokens -------------------------------------------------------------------


async def test_id_token_create_read_update_delete(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    token, group, owner = unique("TAG"), unique("GROUP"), unique("Ana")
    created = await api.post(
        "/id-tokens",
        json={
            "token": token,
            "token_type": "ISO14443",
            "expires_at": "2030-01-01T09:00:00+01:00",
            "parent_token": group,
            "owner": owner,
        },
        headers=operator,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/api/v1/id-tokens/{token}"
    assert created.json() | {"created_at": None} == {
        "token": token,
        "token_type": "ISO14443",
        "status": "Accepted",
        "authorize_status": "Accepted",
        "expires_at": "2030-01-01T08:00:00Z",
        "parent_token": group,
        "owner": owner,
        "created_at": None,
    }
    again = await api.post("/id-tokens", json={"token": token}, headers=operator)
    assert assert_problem(again, 409)["type"] == "urn:moovolt:problem:id-token-exists"

    for query in (f"owner={owner}", f"parent_token={group}", f"q={token}"):
        listed = await api.get(f"/id-tokens?{query}", headers=viewer)
        assert [t["token"] for t in listed.json()["items"]] == [token], query
    blocked = await api.get(f"/id-tokens?owner={owner}&status=Blocked", headers=viewer)
    assert blocked.json()["total"] == 0

    past = await api.patch(
        f"/id-tokens/{token}",
        json={"expires_at": "2020-01-01T00:00:00Z"},
        headers=operator,
    )
    assert past.status_code == 200, past.text
    assert (past.json()["status"], past.json()["authorize_status"]) == (
        "Accepted",
        "Expired",
    )
    cleared = await api.patch(
        f"/id-tokens/{token}",
        json={"expires_at": None, "owner": None, "token_type": None},
        headers=operator,
    )
    assert {k: cleared.json()[k] for k in ("expires_at", "owner", "token_type")} == {
        "expires_at": None,
        "owner": None,
        "token_type": None,
    }
    assert cleared.json()["parent_token"] == group

    deleted = await api.delete(f"/id-tokens/{token}", headers=operator)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await api.get(f"/id-tokens/{token}", headers=viewer), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"token": "x" * 37}, "token"),
        ({"token": "with space"}, "token"),
        ({"token": "T", "status": "ConcurrentTx"}, "status"),
        ({"token": "T", "token_type": "Magic"}, "token_type"),
        ({"token": "T", "expires_at": "2030-01-01T09:00:00"}, "expires_at"),
        ({"token": "T", "owner": "nul\u0000byte"}, "owner"),
    ],
)
async def test_id_token_validation_names_the_field(
    api: httpx.AsyncClient, operator: dict[str, str], body: Any, field: str
) -> None:
    response = await api.post("/id-tokens", json=body, headers=operator)
    assert field_of(response) == [field]


async def test_a_blocked_token_is_refused_at_the_next_authorize(
    stack: Stack,
    api: httpx.AsyncClient,
    operator: dict[str, str],
    charger_id: str,
) -> None:
    token = unique("TAG")
    created = await api.post("/id-tokens", json={"token": token}, headers=operator)
    assert created.status_code == 201, created.text

    async with charger(stack, charger_id) as cp:
        await cp.boot()
        assert await cp.authorize(token) == "Accepted"

        blocked = await api.patch(
            f"/id-tokens/{token}", json={"status": "Blocked"}, headers=operator
        )
        assert blocked.status_code == 200, blocked.text
        assert await cp.authorize(token) == "Blocked"

        deleted = await api.delete(f"/id-tokens/{token}", headers=operator)
        assert deleted.status_code == 204, deleted.text
        assert await cp.authorize(token) == "Invalid"


# -- tariffs ---------------------------------------------------------------------


async def test_tariff_create_read_update_delete_and_its_chargers(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    name = unique("night")
    created = await api.post(
        "/tariffs",
        json={"name": name, "price_per_kwh": "0.25", "vat_percent": 21},
        headers=operator,
    )
    assert created.status_code == 201, created.text
    tariff = created.json()
    assert created.headers["location"] == f"/api/v1/tariffs/{tariff['id']}"
    assert (tariff["price_per_kwh"], tariff["vat_percent"], tariff["currency"]) == (
        "0.2500",
        "21.0000",
        "EUR",
    )
    assert (tariff["is_default"], tariff["charger_count"]) == (False, 0)

    clash = await api.post("/tariffs", json={"name": name}, headers=operator)
    assert assert_problem(clash, 409)["type"] == "urn:moovolt:problem:tariff-exists"

    charger_id = unique("cp")
    with_tariff = await api.post(
        "/chargers",
        json={"id": charger_id, "tariff_id": tariff["id"]},
        headers=operator,
    )
    assert with_tariff.json()["tariff_id"] == tariff["id"]
    got = await api.get(f"/tariffs/{tariff['id']}", headers=viewer)
    assert got.json()["charger_count"] == 1
    users = await api.get(f"/tariffs/{tariff['id']}/chargers", headers=viewer)
    assert [c["id"] for c in users.json()["items"]] == [charger_id]
    by_tariff = await api.get(f"/chargers?tariff_id={tariff['id']}", headers=viewer)
    assert [c["id"] for c in by_tariff.json()["items"]] == [charger_id]

    in_use = await api.delete(f"/tariffs/{tariff['id']}", headers=operator)
    problem = assert_problem(in_use, 409)
    assert (problem["type"], problem["charger_count"]) == (
        "urn:moovolt:problem:tariff-in-use",
        1,
    )

    repriced = await api.patch(
        f"/tariffs/{tariff['id']}",
        json={"price_per_kwh": 0.3, "currency": "CHF"},
        headers=operator,
    )
    assert repriced.status_code == 200, repriced.text
    assert (repriced.json()["price_per_kwh"], repriced.json()["currency"]) == (
        "0.3000",
        "CHF",
    )
    listed = await api.get(f"/tariffs?q={name.upper()}&currency=CHF", headers=viewer)
    assert [t["name"] for t in listed.json()["items"]] == [name]

    freed = await api.patch(
        f"/chargers/{charger_id}", json={"tariff_id": None}, headers=operator
    )
    assert freed.json()["tariff_id"] is None
    deleted = await api.delete(f"/tariffs/{tariff['id']}", headers=operator)
    assert deleted.status_code == 204, deleted.text
    assert_problem(await api.get(f"/tariffs/{tariff['id']}", headers=viewer), 404)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currency": "eur"}, "currency"),
        ({"price_per_kwh": -1}, "price_per_kwh"),
        ({"price_per_minute": "0.00001"}, "price_per_minute"),
        ({"price_per_session": "12345678901"}, "price_per_session"),
        ({"vat_percent": 101}, "vat_percent"),
        ({"name": ""}, "name"),
    ],
)
async def test_tariff_validation_names_the_field(
    api: httpx.AsyncClient, operator: dict[str, str], change: Any, field: str
) -> None:
    body = {"name": unique("t"), **change}
    response = await api.post("/tariffs", json=body, headers=operator)
    assert field_of(response) == [field]


async def test_one_default_tariff(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    async def defaults() -> list[str]:
        listed = await api.get("/tariffs?is_default=true", headers=viewer)
        return [t["name"] for t in listed.json()["items"]]

    assert await defaults() == ["standard"]
    standard = (await api.get("/tariffs?q=standard", headers=viewer)).json()["items"]
    standard_id = next(t["id"] for t in standard if t["name"] == "standard")

    name = unique("promo")
    created = await api.post(
        "/tariffs", json={"name": name, "is_default": True}, headers=operator
    )
    try:
        assert created.status_code == 201, created.text
        assert await defaults() == [name]
        refused = await api.delete(f"/tariffs/{created.json()['id']}", headers=operator)
        problem = assert_problem(refused, 409)
        assert problem["type"] == "urn:moovolt:problem:tariff-is-default"
    finally:
        back = await api.patch(
            f"/tariffs/{standard_id}", json={"is_default": True}, headers=operator
        )
        assert back.status_code == 200, back.text
    assert await defaults() == ["standard"]
    deleted = await api.delete(f"/tariffs/{created.json()['id']}", headers=operator)
    assert deleted.status_code == 204, deleted.text


# -- a session billed while its tariff changed -----------------------------------

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
async def billed(
    stack: Stack, api: httpx.AsyncClient, operator: dict[str, str]
) -> dict[str, Any]:
    """A session on a charger of its own tariff (0.50 EUR/kWh), billed.

    The tariff is repriced and the charger's deletion tried while it runs.
    """
    tariff = await api.post(
        "/tariffs",
        json={"name": unique("half"), "price_per_kwh": "0.50"},
        headers=operator,
    )
    charger_id, token = unique("cp"), unique("TAG")
    for path, body in (
        ("/chargers", {"id": charger_id, "tariff_id": tariff.json()["id"]}),
        ("/id-tokens", {"token": token, "owner": "billing"}),
    ):
        created = await api.post(path, json=body, headers=operator)
        assert created.status_code == 201, created.text

    async with charger(stack, charger_id) as cp:
        await cp.boot()
        tx, status = await cp.start_transaction(1, token, T0)
        assert status == "Accepted"
        await cp.meter(tx, T0 + timedelta(minutes=10), 1000)
        repriced = await api.patch(
            f"/tariffs/{tariff.json()['id']}",
            json={"price_per_kwh": "9.99"},
            headers=operator,
        )
        assert repriced.status_code == 200, repriced.text
        running_delete = await api.delete(f"/chargers/{charger_id}", headers=operator)
        await cp.meter(tx, T0 + timedelta(minutes=20), 1000)
        await cp.stop(tx, T0 + timedelta(minutes=20))

    async def paid() -> Any:
        query = f"/sessions?charger_id={charger_id}&state=Billed"
        return (await api.get(query, headers=operator)).json()["items"]

    [session] = await eventually(paid)
    detail = await api.get(f"/sessions/{session['id']}", headers=operator)
    cdr = await api.get(f"/cdrs/{detail.json()['cdr_id']}", headers=operator)
    return {
        "charger_id": charger_id,
        "token": token,
        "tariff_id": tariff.json()["id"],
        "cdr": cdr.json(),
        "session": detail.json(),
        "running_delete": running_delete,
    }


async def test_a_running_session_keeps_its_tariff(billed: dict[str, Any]) -> None:
    cdr, session = billed["cdr"], billed["session"]
    assert Decimal(cdr["tariff"]["price_per_kwh"]) == Decimal("0.50")
    assert (cdr["energy_wh"], cdr["total_incl_vat"]) == ("2000.000", "1.0000")
    assert session["state"] == "Billed"
    assert session["cdr_id"] == cdr["id"]
    assert session["cost"]["total_incl_vat"] == "1.0000"
    assert session["started_at"] == iso(T0)


async def test_a_charger_with_a_running_session_is_not_deleted(
    billed: dict[str, Any],
) -> None:
    problem = assert_problem(billed["running_delete"], 409)
    assert problem["type"] == "urn:moovolt:problem:session-running"
    assert problem["session_id"] == billed["session"]["id"]


async def test_session_filters(
    api: httpx.AsyncClient, viewer: dict[str, str], billed: dict[str, Any]
) -> None:
    session_id = billed["session"]["id"]
    charger_id, token = billed["charger_id"], billed["token"]

    async def found(query: str) -> list[int]:
        response = await api.get(f"/sessions?{query}", headers=viewer)
        assert response.status_code == 200, response.text
        return [s["id"] for s in response.json()["items"]]

    mine = f"charger_id={charger_id}"
    assert await found(f"id_token={token}") == [session_id]
    assert await found(f"{mine}&state=Billed&running=false") == [session_id]
    assert await found(f"{mine}&running=true") == []
    since = (T0 - timedelta(minutes=1)).isoformat()
    until = (T0 + timedelta(minutes=1)).isoformat()
    assert await found(f"{mine}&{httpx.QueryParams(since=since, until=until)}") == [
        session_id
    ]
    assert await found(f"{mine}&{httpx.QueryParams(since=until)}") == []
    assert await found(f"id_token={token}&sort=-energy_wh&limit=1") == [session_id]

    naive = await api.get("/sessions?since=2026-01-01T00:00:00", headers=viewer)
    assert field_of(naive) == ["since"]


async def test_meter_values_by_measurand_and_as_series(
    api: httpx.AsyncClient, viewer: dict[str, str], billed: dict[str, Any]
) -> None:
    session_id = billed["session"]["id"]
    energy = "Energy.Active.Import.Register"

    samples = await api.get(
        f"/sessions/{session_id}/meter-values?measurand={energy}", headers=viewer
    )
    assert [s["value"] for s in samples.json()["items"]] == ["11000.000", "12000.000"]
    none = await api.get(
        f"/sessions/{session_id}/meter-values?measurand=Voltage", headers=viewer
    )
    assert none.json()["total"] == 0

    series = await api.get(
        f"/sessions/{session_id}/meter-values/series", headers=viewer
    )
    assert series.status_code == 200, series.text
    assert series.json() == {
        "session_id": session_id,
        "truncated": False,
        "series": [
            {
                "measurand": energy,
                "phase": "",
                "location": "",
                "unit": "Wh",
                "sampled_at": [
                    iso(T0 + timedelta(minutes=10)),
                    iso(T0 + timedelta(minutes=20)),
                ],
                "values": ["11000.000", "12000.000"],
            }
        ],
    }
    cut = await api.get(
        f"/sessions/{session_id}/meter-values/series?limit=1", headers=viewer
    )
    assert cut.json()["truncated"] is True
    assert cut.json()["series"][0]["values"] == ["11000.000"]


async def test_cdr_filters(
    api: httpx.AsyncClient, viewer: dict[str, str], billed: dict[str, Any]
) -> None:
    cdr = billed["cdr"]

    async def found(query: str) -> list[str]:
        response = await api.get(f"/cdrs?{query}", headers=viewer)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["items"]]

    assert await found(f"id_token={billed['token']}") == [cdr["id"]]
    assert await found(f"session_id={cdr['session_id']}") == [cdr["id"]]
    stopped = T0 + timedelta(minutes=20)
    window = httpx.QueryParams(
        since=stopped.isoformat(), until=(stopped + timedelta(seconds=1)).isoformat()
    )
    assert await found(f"charger_id={billed['charger_id']}&{window}") == [cdr["id"]]
    later = httpx.QueryParams(since=(stopped + timedelta(seconds=1)).isoformat())
    assert await found(f"charger_id={billed['charger_id']}&{later}") == []


async def test_payments(
    api: httpx.AsyncClient, viewer: dict[str, str], billed: dict[str, Any]
) -> None:
    cdr = billed["cdr"]

    async def paid() -> Any:
        found = await api.get(f"/payments?cdr_id={cdr['id']}", headers=viewer)
        return found.json()["items"]

    payments = await eventually(paid)
    assert len(payments) == 1
    payment = payments[0]
    assert (payment["amount"], payment["currency"]) == ("1.0000", "EUR")

    one = await api.get(f"/payments/{payment['id']}", headers=viewer)
    assert one.json() == payment
    by_status = await api.get(
        f"/payments?status={payment['status']}&sort=-amount&limit=500", headers=viewer
    )
    assert payment["id"] in [p["id"] for p in by_status.json()["items"]]
    assert_problem(await api.get("/payments/2147483647", headers=viewer), 404)


async def test_a_deleted_chargers_sessions_stay_and_it_may_not_connect(
    stack: Stack,
    api: httpx.AsyncClient,
    operator: dict[str, str],
    billed: dict[str, Any],
) -> None:
    charger_id = billed["charger_id"]
    deleted = await api.delete(f"/chargers/{charger_id}", headers=operator)
    assert deleted.status_code == 204, deleted.text

    sessions = await api.get(f"/sessions?charger_id={charger_id}", headers=operator)
    assert [s["id"] for s in sessions.json()["items"]] == [billed["session"]["id"]]
    cdrs = await api.get(f"/cdrs?charger_id={charger_id}", headers=operator)
    assert cdrs.json()["total"] == 1
    assert await refused(stack, charger_id) == 404

    # Its tariff is used by no charger now.
    freed = await api.delete(f"/tariffs/{billed['tariff_id']}", headers=operator)
    assert freed.status_code == 204, freed.text


# -- the audit log ---------------------------------------------------------------


async def test_audit_of_a_command(
    api: httpx.AsyncClient, operator: dict[str, str], viewer: dict[str, str]
) -> None:
    charger_id = unique("cp")
    created = await api.post("/chargers", json={"id": charger_id}, headers=operator)
    assert created.status_code == 201, created.text
    offline = await api.post(
        f"/chargers/{charger_id}/configuration/get",
        json={"key": ["HeartbeatInterval"]},
        headers=operator,
    )
    assert assert_problem(offline, 409)["type"] == "urn:moovolt:problem:charger-offline"
    me = (await api.get("/operators/me", headers=operator)).json()["name"]

    listed = await api.get(f"/audit?charger_id={charger_id}", headers=viewer)
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["items"]
    assert {k: entry[k] for k in ("command", "action", "requested_by", "outcome")} == {
        "command": "ocpp_call",
        "action": "GetConfiguration",
        "requested_by": me,
        "outcome": "offline",
    }
    assert entry["payload"]["payload"] == {"key": ["HeartbeatInterval"]}
    assert entry["created_at"].endswith("Z")

    for query, hits in (
        ("command=ocpp_call&action=GetConfiguration", 1),
        (f"requested_by={me}&outcome=offline", 1),
        ("action=Reset", 0),
        ("command=remote_start", 0),
    ):
        response = await api.get(
            f"/audit?charger_id={charger_id}&{query}", headers=viewer
        )
        assert response.json()["total"] == hits, query
    one = await api.get(f"/audit/{entry['id']}", headers=viewer)
    assert one.json() == entry


@pytest.mark.parametrize("ocpp_version", ["1.6", "2.0.1"])
async def test_a_password_pushed_to_the_charger(
    stack: Stack,
    api: httpx.AsyncClient,
    operator: dict[str, str],
    charger_id: str,
    ocpp_version: str,
) -> None:
    url = stack.charger_url(charger_id)
    async with connected(url, charger_id, ocpp_version) as cp:
        await cp.boot()
        if isinstance(cp, TestCharger):
            # A charger that will not take it: nothing changes on either side.
            cp.configuration["AuthorizationKey"] = (True, "")
            refused_push = await api.post(
                f"/chargers/{charger_id}/password", json={}, headers=operator
            )
            assert refused_push.status_code == 409, refused_push.text
            rows = await stack.sql(
                "SELECT password_hash FROM charger WHERE id = $1", charger_id
            )
            assert rows[0]["password_hash"] is None
            cp.configuration["AuthorizationKey"] = (False, "")

        pushed = await api.post(
            f"/chargers/{charger_id}/password", json={}, headers=operator
        )
        assert pushed.status_code == 200, pushed.text
        assert pushed.json()["charger_status"] == "Accepted"
        password = pushed.json()["password"]
        if isinstance(cp, TestCharger):
            assert cp.configuration["AuthorizationKey"] == (False, password)

    assert await refused(stack, charger_id) == 401
    async with charger(stack, charger_id, password) as cp16:
        assert (await cp16.boot()).status == "Accepted"
    audit = await stack.sql(
        "SELECT payload::text AS payload FROM command_audit WHERE charger_id = $1",
        charger_id,
    )
    assert audit and all(password not in row["payload"] for row in audit)
    assert any("<redacted>" in row["payload"] for row in audit)
