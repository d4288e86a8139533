"""Encoding and decoding of bus contract envelopes."""

import json
from typing import TypeVar

from pydantic import BaseModel

from bus.contract import CONTRACT_VERSION

Model = TypeVar("Model", bound=BaseModel)


class NewerContract(ValueError):
    """The envelope was written for a newer contract than this gateway knows."""


def encode(envelope: BaseModel) -> bytes:
    """Return the JSON body of ``envelope`` for the bus."""
    return envelope.model_dump_json().encode()


def decode(model: type[Model], body: bytes) -> Model:
    """Decode a bus message body into ``model``.

    The contract version is checked before the model, so that an envelope of a
    newer contract is refused as such rather than as a validation failure.

    Raises:
        NewerContract: the envelope's ``contract`` is above ``CONTRACT_VERSION``.
        ValueError: the body is not JSON or does not fit ``model``.
    """
    data = json.loads(body)
    contract = data.get("contract") if isinstance(data, dict) else None
    if isinstance(contract, int) and contract > CONTRACT_VERSION:
        raise NewerContract(f"contract {contract} > {CONTRACT_VERSION}")
    return model.model_validate(data)


def summary(exc: Exception, limit: int = 160) -> str:
    """Return a one-line, bounded account of a decode failure for a log line.

    Validation errors quote the input; the bound keeps payloads out of logs.
    """
    first_line = (str(exc).splitlines() or [type(exc).__name__])[0]
    return first_line[:limit]
