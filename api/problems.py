"""Problem details (RFC 9457) for every error the API returns.

Every error body is ``application/problem+json`` with ``type``, ``title``,
``status`` and ``detail``; validation errors add ``errors``, one per field.
The OpenAPI document says so for every error answer (``document_problems``).
"""

import logging
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from asyncpg.exceptions import DataError as InvalidArgument
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

logger = logging.getLogger(__name__)

MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "urn:moovolt:problem:"
RESERVED = frozenset({"type", "title", "status", "detail", "instance"})


class FieldError(BaseModel):
    """One invalid input field."""

    field: str
    location: list[str | int]
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object; extension members are allowed."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


class ValidationProblem(Problem):
    """The problem of a request that does not validate, one entry per field."""

    errors: list[FieldError]


class ProblemError(Exception):
    """An error the API answers with a typed problem.

    Args:
        status: the HTTP status.
        title: a short, fixed summary of the problem type.
        detail: what happened this time.
        kind: the problem type's last part; ``urn:moovolt:problem:<kind>``.
        headers: extra response headers.
        extra: extension members of the body.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        /,
        *,
        kind: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        clash = extra.keys() & RESERVED
        assert not clash, f"extension members may not redefine {clash}"
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.kind = kind
        self.headers = headers
        self.extra = extra


def invalid_field(field: str, message: str, *, location: str = "body") -> ProblemError:
    """Return the 422 problem of one invalid field, as validation errors are.

    Args:
        field: the field's dotted name, e.g. ``tariff_id``.
        message: what is wrong with its value.
        location: where it came from: ``body``, ``query`` or ``path``.
    """
    error = FieldError(
        field=field,
        location=[location, *field.split(".")],
        message=message,
        type="value_error",
    )
    return ProblemError(
        422,
        "Invalid request",
        f"{field}: {message}",
        kind="invalid-request",
        errors=[error.model_dump()],
    )


def problem_response(
    request: Request,
    status: int,
    *,
    title: str | None = None,
    detail: str | None = None,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """Return a problem details response for ``request``."""
    body = Problem(
        type=f"{PROBLEM_BASE}{kind}" if kind else "about:blank",
        title=title or HTTPStatus(status).phrase,
        status=status,
        detail=detail,
        instance=request.url.path,
        **extra,
    )
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=headers,
        media_type=MEDIA_TYPE,
    )


def _field_name(loc: tuple[str | int, ...]) -> str:
    # The first element says where the value came from (body, query, path).
    parts = loc[1:] if len(loc) > 1 else loc
    return ".".join(str(part) for part in parts)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else None
    return problem_response(
        request, exc.status_code, detail=detail, headers=exc.headers
    )


async def _problem_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    return problem_response(
        request,
        exc.status,
        title=exc.title,
        detail=exc.detail,
        kind=exc.kind,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            field=_field_name(tuple(error["loc"])),
            location=list(error["loc"]),
            message=error["msg"],
            type=error["type"],
        )
        for error in exc.errors()
    ]
    detail = "; ".join(f"{error.field}: {error.message}" for error in errors)
    return problem_response(
        request,
        422,
        title="Invalid request",
        detail=detail,
        kind="invalid-request",
        errors=[error.model_dump() for error in errors],
    )


def _refused_value(exc: DBAPIError) -> bool:
    # PostgreSQL refused a value (SQLSTATE class 22), or asyncpg could not
    # send one (an integer beyond its column, say).
    if isinstance(exc, DataError):
        return True
    cause = exc.orig.__cause__ if exc.orig is not None else None
    return isinstance(cause, InvalidArgument)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the models let through but the database refuses (a NUL
    # character, a number beyond its column) is the client's; any other
    # database error is the server's.
    assert isinstance(exc, DBAPIError)
    if not _refused_value(exc):
        raise exc
    logger.warning(
        "value refused by the database on %s %s: %s",
        request.method,
        request.url.path,
        type(exc.orig).__name__,
    )
    return problem_response(
        request,
        422,
        title="Invalid request",
        detail="A value cannot be stored: it holds a NUL character or is out of range.",
        kind="invalid-value",
        errors=[],
    )


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # Two requests raced for the same name or row; the loser gets a conflict.
    assert isinstance(exc, IntegrityError)
    logger.info(
        "conflicting write on %s %s: %s",
        request.method,
        request.url.path,
        type(exc.orig).__name__,
    )
    return problem_response(
        request,
        409,
        title="conflict",
        detail="The change conflicts with the stored data; read it and retry.",
        kind="conflict",
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The client never sees an internal error's text.
    logger.error(
        "unhandled error on %s %s", request.method, request.url.path, exc_info=exc
    )
    return problem_response(request, 500)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` with problem details."""
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(ProblemError, _problem_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(Exception, _unexpected)


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return OpenAPI ``responses`` declaring problem bodies for ``statuses``."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {MEDIA_TYPE: {}},
        }
        for status in statuses
    }


def problem_doc(status: int) -> dict[str, Any]:
    """Return the OpenAPI response object of a problem answer with ``status``."""
    model = ValidationProblem if status == 422 else Problem
    return {
        "description": HTTPStatus(status).phrase,
        "content": {
            MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def document_problems(schema: dict[str, Any]) -> None:
    """Make every error answer of ``schema`` (OpenAPI) a problem, in place.

    FastAPI documents error bodies as ``application/json`` and validation
    errors with its own model; the API answers ``application/problem+json``,
    validation errors as ``ValidationProblem``. An operation with a body may
    also answer 400, for a body that is not JSON.
    """
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, ValidationProblem):
        model_schema = model.model_json_schema(
            ref_template="#/components/schemas/{model}"
        )
        components.update(model_schema.pop("$defs", {}))
        components[model.__name__] = model_schema
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)

    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation:
                # A body that is not JSON at all; a JSON one that does not
                # validate is a 422.
                responses.setdefault("400", {"description": "Unreadable body"})
            for status in list(responses):
                if status.isdigit() and int(status) >= 400:
                    doc = problem_doc(int(status))
                    doc["description"] = responses[status].get(
                        "description", doc["description"]
                    )
                    responses[status] = doc
