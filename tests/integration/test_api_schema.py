"""The OpenAPI document against the live API: conventions, then schemathesis.

Schemathesis generates requests for every operation from the document alone
and calls the running API process as an admin and as an operator: no answer
may be a server error, and every answer must be one the document declares
(status, media type, body schema). The run is bounded (a few examples per
operation) and deterministic (derandomized, no example database).

It runs on a stack of its own: its requests create, change and delete
whatever the document allows, which the other modules' shared stack must not
suffer. The stack is seeded so that reads find rows, and the tokens' ids lie
far above what the generated ids reach, so no generated call revokes them.
"""

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.integration.api_support import assert_problem, auth
from tests.integration.stack import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Examples per operation, by token and generation mode: about a minute in all.
EXAMPLES = {
    "admin": {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 3},
    "operator": {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 1},
}
# Ids no generated request reaches: the tokens of the run live there.
FAR_ID = 900_000
PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
async def stack(
    run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A stack of this module's own, seeded with one of each resource."""
    logs: Path = tmp_path_factory.mktemp("schema-stack")
    async with running_stack(f"{run_id}s", logs) as own:
        await _seed(own)
        yield own


async def _seed(stack: Stack) -> None:
    await stack.sql(
        "INSERT INTO tariff (name, currency, price_per_kwh, price_per_minute,"
        " price_per_session, vat_percent, is_default, created_at)"
        " VALUES ('standard', 'EUR', 0.3, 0, 1, 20, true, now())"
    )
    await stack.sql(
        "INSERT INTO charger (id, registration_status, security_profile, tariff_id,"
        " connected, created_at) VALUES ('0', 'Accepted', 0, 1, false, now())"
    )
    await stack.sql(
        "INSERT INTO connector (charger_id, connector_id, evse_connector_id, status,"
        " error_code, status_at) VALUES ('0', 1, 0, 'Available', 'NoError', now())"
    )
    await stack.sql(
        "INSERT INTO id_token (token, status, owner, created_at)"
        " VALUES ('0', 'Accepted', 'seed', now())"
    )
    tariff = '{"id": 1, "name": "standard", "currency": "EUR"}'
    session = await stack.sql(
        "INSERT INTO session (charger_id, connector_id, transaction_id,"
        " workflow_id, id_token, origin, state, meter_start_wh, meter_stop_wh,"
        " energy_wh, started_at, stopped_at, tariff, created_at)"
        " VALUES ('0', 1, '1', 'session-0-1', '0', 'charger', 'Billed', 0,"
        " 1000, 1000, now() - interval '1 hour', now(), $1::json, now())"
        " RETURNING id",
        tariff,
    )
    await stack.sql(
        "INSERT INTO meter_value (charger_id, connector_id, transaction_id,"
        " sampled_at, measurand, phase, location, context, unit, value)"
        " VALUES ('0', 1, '1', now(), 'Energy.Active.Import.Register', '', '',"
        " 'Sample.Periodic', 'Wh', 1000)"
    )
    await stack.sql(
        "INSERT INTO cdr (id, session_id, charger_id, connector_id, transaction_id,"
        " id_token, started_at, stopped_at, meter_start_wh, meter_stop_wh,"
        " energy_wh, duration_s, currency, tariff, cost_energy, cost_time,"
        " cost_session, total_excl_vat, vat, total_incl_vat, created_at)"
        " VALUES ('0', $1, '0', 1, '1', '0', now() - interval '1 hour', now(), 0,"
        " 1000, 1000, 3600, 'EUR', $2::json, 0.3, 0, 1, 1.3, 0.26, 1.56, now())",
        session[0]["id"],
        tariff,
    )
    await stack.sql(
        "INSERT INTO payment (cdr_id, idempotency_key, provider, amount, currency,"
        " status, created_at) VALUES ('0', 'payment-session-0-1', 'test',"
        " $1, 'EUR', 'captured', now())",
        Decimal("1.56"),
    )
    await stack.sql(
        "INSERT INTO command_audit (id, charger_id, command, payload, requested_by,"
        " outcome, created_at, completed_at) VALUES ('0', '0', 'ocpp_call',"
        ' \'{"kind": "ocpp_call", "action": "Reset", "payload": {}}\'::json,'
        " 'seed', 'offline', now(), now())"
    )


async def _token(stack: Stack, role: str, offset: int) -> str:
    token = secrets.token_urlsafe(32)
    await stack.sql(
        "INSERT INTO operator (id, name, role, created_at) VALUES ($1, $2, $2, now())",
        FAR_ID + offset,
        role,
    )
    await stack.sql(
        "INSERT INTO api_token (id, operator_id, name, token_hash, created_at)"
        " VALUES ($1, $1, 'schemathesis', $2, now())",
        FAR_ID + offset,
        hashlib.sha256(token.encode()).hexdigest(),
    )
    return token


@pytest.fixture(scope="module")
async def tokens(stack: Stack) -> dict[str, str]:
    """An admin's and an operator's bearer tokens."""
    return {
        "admin": await _token(stack, "admin", 1),
        "operator": await _token(stack, "operator", 2),
    }


@pytest.fixture(scope="module")
def root(stack: Stack) -> str:
    return stack.api_url.removesuffix("/api/v1")


@pytest.fixture(scope="module")
async def document(root: str) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{root}/openapi.json")
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


# -- conventions -----------------------------------------------------------------


async def test_every_operation_follows_the_conventions(
    document: dict[str, Any],
) -> None:
    ids = []
    for method, path, operation in _operations(document):
        where = f"{method} {path}"
        tag = operation["tags"][0]
        ids.append(operation["operationId"])
        assert operation["operationId"].startswith(f"{tag}-"), where
        assert operation.get("summary") and operation.get("description"), where
        success = [s for s in operation["responses"] if s.startswith("2")]
        assert len(success) == 1, where
        if success != ["204"]:
            assert operation["responses"][success[0]]["content"], where
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                content = response["content"]
                assert list(content) == [PROBLEM], f"{where} {status}"
                model = "ValidationProblem" if status == "422" else "Problem"
                ref = content[PROBLEM]["schema"]["$ref"]
                assert ref == f"#/components/schemas/{model}", f"{where} {status}"
    assert len(ids) == len(set(ids))
    assert "HTTPValidationError" not in document["components"]["schemas"]


async def test_times_are_iso_8601_date_times(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for name in ("ChargerPublic", "SessionPublic", "CdrPublic", "AuditPublic"):
        created = schemas[name]["properties"]["created_at"]
        assert created == {
            "type": "string",
            "format": "date-time",
            "title": "Created At",
        }


@pytest.mark.parametrize(
    ("path", "field", "location"),
    [
        ("/tariffs/abc", "tariff_id", ["path", "tariff_id"]),
        ("/sessions/0", "session_id", ["path", "session_id"]),
        ("/sessions?sort=-nothing", "sort", ["query", "sort"]),
        ("/cdrs?until=yesterday", "until", ["query", "until"]),
        ("/chargers?offset=-1", "offset", ["query", "offset"]),
    ],
)
async def test_invalid_parameters_are_problems_naming_them(
    root: str,
    tokens: dict[str, str],
    path: str,
    field: str,
    location: list[str],
) -> None:
    async with httpx.AsyncClient(base_url=f"{root}/api/v1", timeout=30) as api:
        response = await api.get(path, headers=auth(tokens["admin"]))
    body = assert_problem(response, 422)
    assert body["type"] == "urn:moovolt:problem:invalid-request"
    assert [(e["field"], e["location"]) for e in body["errors"]] == [(field, location)]
    assert body["detail"].startswith(f"{field}: ")


# -- schemathesis ----------------------------------------------------------------


def _streams(operation: schemathesis.APIOperation[Any, Any, Any, Any]) -> bool:
    responses = operation.definition.raw.get("responses", {})
    return any("text/event-stream" in r.get("content", {}) for r in responses.values())


def run_schemathesis(
    root: str, token: str, examples: dict[GenerationMode, int]
) -> tuple[int, list[str]]:
    """Fuzz every operation with ``token``; return how many, and the failures.

    A streaming operation (server-sent events) never ends and is left out.
    """
    schema = schemathesis.openapi.from_url(f"{root}/openapi.json", timeout=30)
    session = requests.Session()
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    fuzzed = 0
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures.append(f"unreadable operation: {result.err()}")
            continue
        operation = result.ok()
        if _streams(operation):
            continue
        fuzzed += 1
        for mode, count in examples.items():

            @hypothesis.settings(
                max_examples=count,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case[Any]) -> None:
                response = case.call(
                    base_url=root, session=session, headers=headers, timeout=60
                )
                case.validate_response(response, checks=CHECKS, headers=headers)

            try:
                call()
            except Unsatisfiable:
                pass  # nothing to make invalid: no parameter, no body
            # Schemathesis reports several failures as one FailureGroup.
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return fuzzed, failures


@pytest.mark.parametrize("role", ["admin", "operator"])
async def test_schemathesis_finds_no_server_error_nor_broken_answer(
    root: str, tokens: dict[str, str], document: dict[str, Any], role: str
) -> None:
    fuzzed, failures = await asyncio.to_thread(
        run_schemathesis, root, tokens[role], EXAMPLES[role]
    )
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    streams = sum(
        "text/event-stream" in r.get("content", {})
        for _, _, operation in _operations(document)
        for r in operation["responses"].values()
    )
    assert fuzzed == len(_operations(document)) - streams
