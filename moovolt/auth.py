"""Operators and their API credentials.

A token is shown once, when it is issued; the database keeps only its SHA-256,
so a leaked database does not leak working tokens.
"""

import hashlib
import logging
import secrets
from enum import StrEnum

from argon2 import PasswordHasher
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from store.models import ApiToken, Operator

logger = logging.getLogger(__name__)

TOKEN_BYTES = 32


class Role(StrEnum):
    """What an operator may do; each role includes the ones below it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Return the role's place in the order viewer < operator < admin."""
        return _RANK[self]

    def allows(self, required: "Role") -> bool:
        """Return whether this role may do what ``required`` may do."""
        return self.rank >= required.rank


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class OperatorExists(Exception):
    """An operator of that name is already registered."""


def new_token() -> str:
    """Return a fresh random bearer token (32 bytes, URL-safe base64)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """Return the hex SHA-256 under which ``token`` is stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``."""
    return PasswordHasher().hash(password)


async def create_operator(
    db: AsyncSession, name: str, role: Role, *, password: str | None = None
) -> Operator:
    """Register an operator.

    Args:
        db: the session to write with; committed here.
        name: unique login name.
        role: what the operator may do.
        password: optional; only its argon2 hash is kept.

    Returns:
        The stored operator.

    Raises:
        OperatorExists: ``name`` is taken.
    """
    found = await db.exec(select(Operator).where(Operator.name == name))
    if found.first() is not None:
        raise OperatorExists(name)

    operator = Operator(
        name=name,
        role=role.value,
        password_hash=hash_password(password) if password else None,
    )
    db.add(operator)
    await db.commit()
    logger.info("operator created", extra={"operator": name, "role": role.value})
    return operator


async def issue_api_token(
    db: AsyncSession, operator: Operator, *, name: str = "default"
) -> tuple[ApiToken, str]:
    """Issue a new API token for ``operator``.

    Args:
        db: the session to write with; committed here.
        operator: whose token it is.
        name: what the token is for, to tell an operator's tokens apart.

    Returns:
        The stored token (its hash only) and the token in clear, which
        exists only here: show it once.
    """
    assert operator.id is not None
    token = new_token()
    row = ApiToken(operator_id=operator.id, name=name, token_hash=hash_token(token))
    db.add(row)
    await db.commit()
    logger.info("api token issued", extra={"operator": operator.name})
    return row, token


async def issue_token(
    db: AsyncSession, operator: Operator, *, name: str = "default"
) -> str:
    """Issue a new API token for ``operator`` and return it in clear.

    The clear token exists only in the return value: show it once.
    """
    _, token = await issue_api_token(db, operator, name=name)
    return token


async def token_owner(db: AsyncSession, token: str) -> tuple[ApiToken, Operator] | None:
    """Return the stored token and its operator, or None if ``token`` is unknown."""
    found = await db.exec(
        select(ApiToken, Operator)
        .join(Operator, ApiToken.operator_id == Operator.id)  # type: ignore[arg-type]
        .where(ApiToken.token_hash == hash_token(token))
    )
    row = found.first()
    return None if row is None else (row[0], row[1])
