"""One page of a table, with the count of all rows that match."""

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func
from sqlmodel import SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

RowT = TypeVar("RowT", bound=SQLModel)


async def fetch_page(
    db: AsyncSession,
    model: type[RowT],
    where: Sequence[ColumnElement[bool]],
    order_by: Sequence[Any],
    *,
    limit: int,
    offset: int,
) -> tuple[int, Sequence[RowT]]:
    """Return how many rows of ``model`` match ``where``, and one page of them."""
    total = (await db.exec(select(func.count()).select_from(model).where(*where))).one()
    rows = await db.exec(
        select(model).where(*where).order_by(*order_by).limit(limit).offset(offset)
    )
    return total, rows.all()
