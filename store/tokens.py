"""The verdict on an id token, shared by Authorize and the session workflow."""

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from bus.contract import AuthorizationStatus, IdTokenInfo
from store.models import IdToken


async def check_id_token(db: AsyncSession, token: str, now: datetime) -> IdTokenInfo:
    """Return whether ``token`` may charge at ``now``.

    Unknown tokens are Invalid; an Accepted token past its expiry is Expired.
    """
    row = await db.get(IdToken, token)
    if row is None:
        return IdTokenInfo(status=AuthorizationStatus.INVALID)

    status = AuthorizationStatus(row.status)
    if (
        status is AuthorizationStatus.ACCEPTED
        and row.expires_at
        and row.expires_at <= now
    ):
        status = AuthorizationStatus.EXPIRED
    return IdTokenInfo(
        status=status, expiry_date=row.expires_at, parent_id_token=row.parent_token
    )
