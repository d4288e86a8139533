"""Who may call what: every operation of the OpenAPI document, for every role.

The expectations are not written here: each route's role dependency
(``api.deps.require``) is the table, and the live API publishes it in its
OpenAPI document as ``x-required-role``. The walk calls every operation of
the running API without a token, with an unknown one and with a token of
each role, on ids that do not exist: below the role it must answer 403,
at or above it anything but 401 and 403. The table itself is held to the
rules of the API (viewers read, operators also manage and command, admins
also manage operators) by ``test_the_role_table_follows_the_rules``.

Operators and their API tokens, and settings refusing the development
secrets outside development, are here too.
"""

import asyncio
import os
import secrets
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from moovolt.auth import Role
from moovolt.settings import DEFAULT_DATABASE_URL, Settings, default_secrets
from tests.conftest import ROOT
from tests.integration.api_support import assert_problem, auth, stack_token
from tests.integration.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROLES = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)
METHODS = ("get", "post", "put", "patch", "delete")
PLACEHOLDER = "no-such-thing"
# Read by every role: the GET operations of these tags, and of chargers these.
READ_BY_VIEWERS = {"sessions", "cdrs", "payments", "id_tokens", "tariffs", "audit"}
CHARGER_READS = {"chargers-list_chargers", "chargers-get_charger"}
# Managed by operators: every change of these tags needs the operator role.
MANAGED_BY_OPERATORS = {"chargers", "id_tokens", "tariffs", "sessions"}


@pytest.fixture(scope="module")
async def tokens(stack: Stack, api_token: str, viewer_token: str) -> dict[Role, str]:
    """A bearer token per role."""
    return {
        Role.VIEWER: viewer_token,
        Role.OPERATOR: api_token,
        Role.ADMIN: await stack_token(stack, "admin"),
    }


@pytest.fixture(scope="module")
async def client(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client of the stack's API process, at its root."""
    root = stack.api_url.removesuffix("/api/v1")
    async with httpx.AsyncClient(base_url=root, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
async def schema(client: httpx.AsyncClient) -> dict[str, Any]:
    """The live API's OpenAPI document."""
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    document: dict[str, Any] = response.json()
    return document


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Return (method, path, operation) for every operation of ``schema``."""
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _placeholder(parameter: dict[str, Any]) -> str:
    kind = parameter["schema"]
    if kind.get("type") == "integer":
        return str(min(kind.get("maximum", 2**31 - 1), 2**31 - 1))
    return PLACEHOLDER[: kind.get("maxLength", len(PLACEHOLDER))]


def request_for(
    schema: dict[str, Any], path: str, operation: dict[str, Any]
) -> tuple[str, Any]:
    """Return the URL (ids that do not exist) and a body for ``operation``.

    The body is empty (``{}`` or ``[]``): a caller allowed in gets a 422 or
    a 404, and nothing is changed.
    """
    url = path
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            url = url.replace(f"{{{parameter['name']}}}", _placeholder(parameter))

    body = operation.get("requestBody")
    if body is None:
        return url, None
    content = body["content"].get("application/json", {}).get("schema", {})
    return url, [] if _resolve(schema, content).get("type") == "array" else {}


async def status_of(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
) -> int:
    """Call the API and return the status; a stream is closed unread."""
    async with client.stream(
        method.upper(),
        url,
        json=body,
        headers=headers,
    ) as response:
        return response.status_code


# -- the table -------------------------------------------------------------------


async def test_every_operation_but_the_probes_needs_a_role(
    schema: dict[str, Any],
) -> None:
    for method, path, operation in operations(schema):
        role = operation.get("x-required-role")
        if operation["tags"] == ["health"]:
            assert role is None, f"{method} {path}"
            continue
        assert role in {r.value for r in ROLES}, f"{method} {path} needs no role"
        assert "401" in operation["responses"], f"{method} {path}"
        assert f"`{role}` role" in operation["description"]
        assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == (
            "bearer"
        )


async def test_the_role_table_follows_the_rules(schema: dict[str, Any]) -> None:
    """Viewers read all but operators; operators manage and command; admins
    manage operators and their tokens."""
    wrong = []
    for method, path, operation in operations(schema):
        tag, op_id = operation["tags"][0], operation["operationId"]
        role = operation.get("x-required-role")
        if tag == "health":
            continue
        if tag == "operators":
            expected = Role.VIEWER if op_id == "operators-get_me" else Role.ADMIN
        elif method == "get" and (tag in READ_BY_VIEWERS or op_id in CHARGER_READS):
            expected = Role.VIEWER
        elif method != "get" and tag in MANAGED_BY_OPERATORS:
            expected = Role.OPERATOR
        elif method != "get":
            if role == Role.VIEWER:
                wrong.append(f"{method} {path}: a viewer may change things")
            continue
        else:
            continue
        if role != expected:
            wrong.append(f"{method} {path}: {role}, not {expected.value}")
    assert wrong == []


# -- the walk --------------------------------------------------------------------


async def test_each_role_gets_what_the_table_says(
    client: httpx.AsyncClient, schema: dict[str, Any], tokens: dict[Role, str]
) -> None:
    wrong = []
    walked = 0
    for method, path, operation in operations(schema):
        needed = operation.get("x-required-role")
        if needed is None:
            continue
        url, body = request_for(schema, path, operation)

        for label, headers, expect in (
            ("no token", {}, {401}),
            ("unknown token", auth("not-a-token"), {401}),
        ):
            status = await status_of(client, method, url, body, headers)
            if status not in expect:
                wrong.append(f"{method} {path} with {label}: {status}")
        for role in ROLES:
            status = await status_of(client, method, url, body, auth(tokens[role]))
            allowed = role.allows(Role(needed))
            if allowed and status in (401, 403):
                wrong.append(f"{method} {path} as {role.value}: {status}")
            if not allowed and status != 403:
                wrong.append(f"{method} {path} as {role.value}: {status}, not 403")
        walked += 1

    assert wrong == []
    assert walked >= 40  # every resource's operations were walked


async def test_refusals_are_problems_with_a_challenge(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    missing = await client.get("/api/v1/operators")
    assert missing.status_code == 401, missing.text
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.headers["www-authenticate"] == 'Bearer realm="moovolt"'

    below = await client.get("/api/v1/operators", headers=auth(tokens[Role.OPERATOR]))
    assert below.status_code == 403, below.text
    assert below.json()["detail"] == "This needs the admin role; you are operator."


# -- operators and their tokens --------------------------------------------------


async def test_operators_and_their_tokens(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    admin = auth(tokens[Role.ADMIN])
    name = f"ana-{secrets.token_hex(4)}"
    created = await client.post(
        "/api/v1/operators",
        json={"name": name, "role": "viewer", "password": "correct horse battery"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    ana = created.json()
    assert (ana["role"], ana["has_password"]) == ("viewer", True)
    assert "password_hash" not in ana
    clash = await client.post("/api/v1/operators", json={"name": name}, headers=admin)
    assert assert_problem(clash, 409)["type"] == "urn:moovolt:problem:operator-exists"

    issued = await client.post(
        f"/api/v1/operators/{ana['id']}/tokens", json={"name": "laptop"}, headers=admin
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]
    as_ana = auth(token)
    me = await client.get("/api/v1/operators/me", headers=as_ana)
    assert me.json()["name"] == name
    assert_problem(await client.post("/api/v1/id-tokens", json={}, headers=as_ana), 403)

    issued_to_ana = await client.get(
        f"/api/v1/operators/{ana['id']}/tokens", headers=admin
    )
    [listed] = issued_to_ana.json()["items"]
    assert set(listed) == {"id", "operator_id", "name", "created_at", "last_used_at"}
    assert listed["name"] == "laptop"
    assert listed["last_used_at"] is not None  # used just above

    promoted = await client.patch(
        f"/api/v1/operators/{ana['id']}", json={"role": "operator"}, headers=admin
    )
    assert promoted.json()["role"] == "operator"
    # Allowed now: the empty body is what is refused.
    assert_problem(await client.post("/api/v1/id-tokens", json={}, headers=as_ana), 422)
    by_role = await client.get(
        f"/api/v1/operators?role=operator&q={name}", headers=admin
    )
    assert [o["name"] for o in by_role.json()["items"]] == [name]

    revoked = await client.delete(
        f"/api/v1/operators/{ana['id']}/tokens/{listed['id']}", headers=admin
    )
    assert revoked.status_code == 204, revoked.text
    assert_problem(await client.get("/api/v1/operators/me", headers=as_ana), 401)

    second = await client.post(
        f"/api/v1/operators/{ana['id']}/tokens", json={}, headers=admin
    )
    assert second.json()["name"] == "default"
    deleted = await client.delete(f"/api/v1/operators/{ana['id']}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    assert_problem(
        await client.get("/api/v1/operators/me", headers=auth(second.json()["token"])),
        401,
    )
    assert_problem(
        await client.get(f"/api/v1/operators/{ana['id']}", headers=admin), 404
    )


async def test_an_admin_cannot_lock_themself_out(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    admin = auth(tokens[Role.ADMIN])
    me = (await client.get("/api/v1/operators/me", headers=admin)).json()
    assert me["role"] == "admin"

    deleted = await client.delete(f"/api/v1/operators/{me['id']}", headers=admin)
    demoted = await client.patch(
        f"/api/v1/operators/{me['id']}", json={"role": "viewer"}, headers=admin
    )
    for refusal in (deleted, demoted):
        problem = assert_problem(refusal, 409)
        assert problem["type"] == "urn:moovolt:problem:own-operator"
    still = await client.patch(
        f"/api/v1/operators/{me['id']}", json={"role": "admin"}, headers=admin
    )
    assert still.json()["role"] == "admin"


# -- settings --------------------------------------------------------------------

STRONG_DB = "postgresql+asyncpg://moovolt:Xk3-long-and-random@db:5432/moovolt"
STRONG_AMQP = "amqp://moovolt:Qz9-long-and-random@mq:5672/"


@pytest.mark.parametrize(
    ("database_url", "amqp_url", "refused"),
    [
        (DEFAULT_DATABASE_URL, STRONG_AMQP, ["MOOVOLT_DATABASE_URL"]),
        (
            "postgresql+asyncpg://moovolt:moovolt@db/moovolt",
            STRONG_AMQP,
            ["MOOVOLT_DATABASE_URL"],
        ),
        ("postgresql+asyncpg://u:postgres@db/m", STRONG_AMQP, ["MOOVOLT_DATABASE_URL"]),
        (STRONG_DB, "amqp://guest:guest@127.0.0.1:5672/", ["MOOVOLT_AMQP_URL"]),
        (STRONG_DB, "amqp://guest:s0mething-else@mq/", ["MOOVOLT_AMQP_URL"]),
        (STRONG_DB, "amqp://mq:5672/", ["MOOVOLT_AMQP_URL"]),
        (STRONG_DB, "amqp://moovolt@mq/", ["MOOVOLT_AMQP_URL"]),
        (STRONG_DB, "amqp://moovolt:changeme@mq/", ["MOOVOLT_AMQP_URL"]),
        (
            DEFAULT_DATABASE_URL,
            "amqp://guest:guest@127.0.0.1:5672/",
            ["MOOVOLT_DATABASE_URL", "MOOVOLT_AMQP_URL"],
        ),
        (STRONG_DB, STRONG_AMQP, []),
        # No password in the URL: PGPASSWORD, a passfile or a certificate.
        ("postgresql+asyncpg://moovolt@db:5432/moovolt", STRONG_AMQP, []),
    ],
)
def test_settings_refuse_development_secrets_outside_development(
    database_url: str, amqp_url: str, refused: list[str]
) -> None:
    def settings(environment: str) -> Settings:
        return Settings(
            environment=environment, database_url=database_url, amqp_url=amqp_url
        )

    found = default_secrets(settings("development"))
    assert [line.split()[0] for line in found] == refused

    if refused:
        with pytest.raises(ValidationError) as error:
            settings("production")
        for variable in refused:
            assert variable in str(error.value)
    else:
        assert settings("production").environment == "production"


@pytest.mark.parametrize("environment", ["development", "test", "Test"])
def test_development_and_test_run_on_the_defaults(environment: str) -> None:
    settings = Settings(
        environment=environment,
        database_url=DEFAULT_DATABASE_URL,
        amqp_url="amqp://guest:guest@127.0.0.1:5672/",
    )
    assert default_secrets(settings) != []  # the defaults, let through


async def test_a_process_on_development_secrets_refuses_to_start() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MOOVOLT_")
    }
    env.update(
        MOOVOLT_ENVIRONMENT="production",
        MOOVOLT_DATABASE_URL="postgresql+asyncpg://moovolt:moovolt@127.0.0.1/moovolt",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "moovolt",
        "api",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        out, err = await process.communicate()

    assert process.returncode == 2, (out + err).decode()
    message = err.decode()
    assert "MOOVOLT_DATABASE_URL has a well-known password" in message
    assert "MOOVOLT_AMQP_URL logs in as RabbitMQ's guest" in message
    assert "moovolt:moovolt@" not in message  # the URL itself is not printed
