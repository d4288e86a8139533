"""The HTTP API against a real PostgreSQL, with Temporal unreachable.

Here remote start and stop must fail cleanly with a 503 problem;
``test_api_commands`` runs them against a Temporal dev server.
"""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from billing.tariff import TariffSnapshot
from moovolt.auth import Role, create_operator, issue_token
from moovolt.settings import Settings
from store.db import make_engine, make_sessionmaker
from store.models import Cdr, Charger, Connector, MeterValue, Session
from tests.integration.api_support import (
    api_client,
    assert_problem,
    auth,
    closed_port,
    database_url,
)

pytestmark = pytest.mark.integration

__all__ = ["database_url"]  # a fixture

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
TARIFF = TariffSnapshot(name="t", currency="EUR", price_per_kwh=Decimal("0.30"))


@pytest.fixture(scope="module")
async def tokens(database_url: str) -> dict[Role, str]:
    """Seed chargers, sessions, meter values and a CDR; return a token per role."""
    engine = make_engine(database_url, pool_size=1)
    issued: dict[Role, str] = {}
    async with make_sessionmaker(engine)() as db:
        for role in Role:
            operator = await create_operator(db, f"op-{role.value}", role)
            issued[role] = await issue_token(db, operator)

        db.add(Charger(id="c-1", connected=True, vendor="V", model="M"))
        db.add(Charger(id="c-2", connected=False))
        await db.commit()
        db.add(Connector(charger_id="c-1", connector_id=0, status="Available"))
        db.add(Connector(charger_id="c-1", connector_id=1, status="Charging"))
        db.add(
            Session(
                id=101,
                charger_id="c-1",
                connector_id=1,
                transaction_id="101",
                workflow_id="session-c-1-101",
                id_token="TAG-1",
                state="Charging",
                meter_start_wh=Decimal(1000),
                started_at=T0,
                tariff=TARIFF.model_dump(mode="json"),
            )
        )
        db.add(
            Session(
                id=102,
                charger_id="c-2",
                connector_id=1,
                transaction_id="102",
                workflow_id="session-c-2-102",
                id_token="TAG-2",
                state="Billed",
                meter_start_wh=Decimal(0),
                meter_stop_wh=Decimal(5000),
                energy_wh=Decimal(5000),
                started_at=T0,
                stopped_at=T0 + timedelta(hours=1),
            )
        )
        await db.commit()
        for minute, wh in ((1, 1100), (2, 1250)):
            db.add(
                MeterValue(
                    charger_id="c-1",
                    connector_id=1,
                    transaction_id="101",
                    sampled_at=T0 + timedelta(minutes=minute),
                    measurand="Energy.Active.Import.Register",
                    unit="Wh",
                    value=Decimal(wh),
                )
            )
        db.add(
            Cdr(
                id="cdr-102",
                session_id=102,
                charger_id="c-2",
                connector_id=1,
                transaction_id="102",
                id_token="TAG-2",
                started_at=T0,
                stopped_at=T0 + timedelta(hours=1),
                meter_start_wh=Decimal(0),
                meter_stop_wh=Decimal(5000),
                energy_wh=Decimal(5000),
                duration_s=3600,
                currency="EUR",
                tariff=TARIFF.model_dump(mode="json"),
                cost_energy=Decimal("1.50"),
                total_excl_vat=Decimal("1.50"),
                vat=Decimal("0.32"),
                total_incl_vat=Decimal("1.82"),
            )
        )
        await db.commit()
    await engine.dispose()
    return issued


@pytest.fixture(scope="module")
async def client(
    database_url: str, tokens: dict[Role, str]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app, its lifespan running, with Temporal at a port nobody serves."""
    settings = Settings(
        database_url=database_url,
        temporal_address=f"127.0.0.1:{closed_port()}",
        temporal_ui_url="http://ui.test:8233",
    )
    async with api_client(settings) as http:
        yield http


# -- authentication and roles ---------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/chargers", "/api/v1/sessions", "/api/v1/cdrs"]
)
async def test_missing_token_is_401_with_challenge(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_bad_token_is_401_invalid_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/chargers", headers=auth("not-a-token"))
    assert_problem(response, 401)
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_viewer_may_not_remote_start(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/chargers/c-1/remote-start",
        json={"connector_id": 1, "id_token": "TAG-1"},
        headers=auth(tokens[Role.VIEWER]),
    )
    body = assert_problem(response, 403)
    assert "operator" in body["detail"]


async def test_viewer_may_not_stop(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/sessions/101/stop", headers=auth(tokens[Role.VIEWER])
    )
    assert_problem(response, 403)


# -- chargers -------------------------------------------------------------------


async def test_list_chargers_pages_with_connectors(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    headers = auth(tokens[Role.VIEWER])
    first = await client.get("/api/v1/chargers?limit=1", headers=headers)
    assert first.status_code == 200, first.text
    page = first.json()
    assert page["total"] == 2
    assert [c["id"] for c in page["items"]] == ["c-1"]
    c1 = page["items"][0]
    assert c1["status"] == "Available"
    assert [(c["connector_id"], c["status"]) for c in c1["connectors"]] == [
        (0, "Available"),
        (1, "Charging"),
    ]

    second = await client.get("/api/v1/chargers?limit=1&offset=1", headers=headers)
    c2 = second.json()["items"][0]
    assert (c2["id"], c2["status"], c2["connectors"]) == ("c-2", "Offline", [])


async def test_get_charger(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    response = await client.get(
        "/api/v1/chargers/c-1", headers=auth(tokens[Role.ADMIN])
    )
    assert response.status_code == 200, response.text
    assert response.json()["vendor"] == "V"


async def test_unknown_charger_is_404_problem(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.get(
        "/api/v1/chargers/nope", headers=auth(tokens[Role.VIEWER])
    )
    body = assert_problem(response, 404)
    assert body["detail"] == "No charger nope."
    assert body["instance"] == "/api/v1/chargers/nope"


async def test_remote_start_of_unknown_charger_is_404(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/chargers/nope/remote-start",
        json={"id_token": "TAG-1"},
        headers=auth(tokens[Role.OPERATOR]),
    )
    assert_problem(response, 404)


async def test_remote_start_validation_error_names_the_field(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/chargers/c-1/remote-start",
        json={"connector_id": "first", "id_token": "TAG-1"},
        headers=auth(tokens[Role.OPERATOR]),
    )
    body = assert_problem(response, 422)
    assert [e["field"] for e in body["errors"]] == ["connector_id"]
    assert body["detail"].startswith("connector_id: ")


async def test_query_validation_error_names_the_field(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.get(
        "/api/v1/chargers?limit=0", headers=auth(tokens[Role.VIEWER])
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "limit"
    assert body["errors"][0]["location"] == ["query", "limit"]


async def test_remote_start_without_temporal_is_503(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    headers = auth(tokens[Role.OPERATOR])
    before = (await client.get("/api/v1/sessions", headers=headers)).json()["total"]

    response = await client.post(
        "/api/v1/chargers/c-1/remote-start",
        json={"connector_id": 1, "id_token": "TAG-1"},
        headers=headers,
    )
    assert_problem(response, 503)
    assert response.headers["retry-after"]

    # Refused before a session was reserved: nothing is left behind.
    after = (await client.get("/api/v1/sessions", headers=headers)).json()["total"]
    assert after == before


# -- sessions -------------------------------------------------------------------


async def test_list_sessions_filters(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    headers = auth(tokens[Role.VIEWER])
    everything = (await client.get("/api/v1/sessions", headers=headers)).json()
    assert [s["id"] for s in everything["items"]] == [102, 101]

    by_charger = await client.get("/api/v1/sessions?charger_id=c-1", headers=headers)
    assert [s["id"] for s in by_charger.json()["items"]] == [101]

    billed = await client.get("/api/v1/sessions?state=Billed", headers=headers)
    assert [s["id"] for s in billed.json()["items"]] == [102]

    bad = await client.get("/api/v1/sessions?state=Asleep", headers=headers)
    assert assert_problem(bad, 422)["errors"][0]["field"] == "state"


async def test_running_session_detail_degrades_without_temporal(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.get(
        "/api/v1/sessions/101", headers=auth(tokens[Role.VIEWER])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "Charging"
    assert body["meter_start_wh"] == "1000.000"
    assert body["started_at"] == "2026-05-01T08:00:00Z"
    assert body["live"] is None
    assert body["live_error"] == "Temporal does not answer."
    assert body["temporal_ui_url"] == (
        "http://ui.test:8233/namespaces/default/workflows/session-c-1-101"
    )


async def test_finished_session_detail(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.get(
        "/api/v1/sessions/102", headers=auth(tokens[Role.VIEWER])
    )
    body = response.json()
    assert (body["state"], body["energy_wh"], body["live"]) == (
        "Billed",
        "5000.000",
        None,
    )
    assert body["live_error"] is None


async def test_unknown_session_is_404_problem(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    headers = auth(tokens[Role.OPERATOR])
    assert_problem(await client.get("/api/v1/sessions/999", headers=headers), 404)
    assert_problem(await client.post("/api/v1/sessions/999/stop", headers=headers), 404)


async def test_meter_values_of_a_session(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.get(
        "/api/v1/sessions/101/meter-values", headers=auth(tokens[Role.VIEWER])
    )
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["total"] == 2
    assert [(s["sampled_at"], s["value"]) for s in page["items"]] == [
        ("2026-05-01T08:01:00Z", "1100.000"),
        ("2026-05-01T08:02:00Z", "1250.000"),
    ]


async def test_stop_of_a_finished_session_is_409(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/sessions/102/stop", headers=auth(tokens[Role.OPERATOR])
    )
    body = assert_problem(response, 409)
    assert body["state"] == "Billed"


async def test_stop_without_temporal_is_503(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/api/v1/sessions/101/stop", headers=auth(tokens[Role.ADMIN])
    )
    assert_problem(response, 503)


# -- CDRs -----------------------------------------------------------------------


async def test_cdrs(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    headers = auth(tokens[Role.VIEWER])
    listed = (await client.get("/api/v1/cdrs", headers=headers)).json()
    assert [c["id"] for c in listed["items"]] == ["cdr-102"]
    assert (await client.get("/api/v1/cdrs?charger_id=c-1", headers=headers)).json()[
        "items"
    ] == []

    one = await client.get("/api/v1/cdrs/cdr-102", headers=headers)
    assert one.status_code == 200, one.text
    assert (one.json()["total_incl_vat"], one.json()["duration_s"]) == ("1.8200", 3600)
    assert_problem(await client.get("/api/v1/cdrs/nope", headers=headers), 404)


# -- probes, schema, dashboard --------------------------------------------------


async def test_probes_need_no_token(client: httpx.AsyncClient) -> None:
    live = await client.get("/healthz")
    assert live.status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "database": "ok",
        "temporal": "connecting",
    }


async def test_openapi_operation_ids_are_unique(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operations = [
        operation for path in schema["paths"].values() for operation in path.values()
    ]
    ids = [operation["operationId"] for operation in operations]
    assert len(ids) == len(set(ids))
    assert "chargers-remote_start" in ids
    # "<tag>-<function name>"
    assert all(
        operation["operationId"].split("-", 1)[0] == operation["tags"][0]
        for operation in operations
    )


async def test_dashboard_placeholder(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/docs" in response.text
