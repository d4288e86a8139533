"""The verdict on an id token, shared by Authorize and the session workflow."""

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from bus.contract import AuthorizationStatus, IdTokenInfo
from store.models import IdToken

NO_AUTHORIZATION = "NoAuthorization"
# A verdict cached by a 2.0.1 charger is asked again after this long, so a
# token blocked in the CSMS stops working offline within a day.
CACHE_LIFETIME = timedelta(days=1)


async def check_id_token(
    db: AsyncSession, token: str, now: datetime, token_type: str | None = None
) -> IdTokenInfo:
    """Return whether ``token`` may charge at ``now``.

    Unknown tokens are Invalid; an Accepted token past its expiry is Expired.
    A 2.0.1 token of type NoAuthorization (a charger that lets anyone charge)
    is Accepted without a lookup; a token registered with a type must be
    presented as that type.
    """
    if token_type == NO_AUTHORIZATION:
        return IdTokenInfo(status=AuthorizationStatus.ACCEPTED)
    row = await db.get(IdToken, token)
    if row is None or (
        token_type is not None
        and row.token_type is not None
        and row.token_type != token_type
    ):
        return IdTokenInfo(status=AuthorizationStatus.INVALID)

    status = AuthorizationStatus(row.status)
    if (
        status is AuthorizationStatus.ACCEPTED
        and row.expires_at
        and row.expires_at <= now
    ):
        status = AuthorizationStatus.EXPIRED
    return IdTokenInfo(
        status=status,
        expiry_date=row.expires_at,
        parent_id_token=row.parent_token,
        cache_expiry_date=_cache_expiry(status, row.expires_at, now),
    )


def _cache_expiry(
    status: AuthorizationStatus, expires_at: datetime | None, now: datetime
) -> datetime | None:
    """How long a charger may keep an accepted verdict in its cache."""
    if status is not AuthorizationStatus.ACCEPTED:
        return None
    horizon = now + CACHE_LIFETIME
    return horizon if expires_at is None else min(expires_at, horizon)
