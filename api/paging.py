"""One page of a table, with the count of all rows that match, in a chosen order."""

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from fastapi import Query
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


def sorting(
    columns: Mapping[str, Any], *, default: str, tiebreak: Any
) -> Callable[[str], list[Any]]:
    """Return a dependency reading the ``sort`` query parameter of a list.

    ``sort`` is one of ``columns``' names, ``-name`` for descending; the
    OpenAPI document lists every value. Rows without a value come last either
    way, and ``tiebreak`` (a unique column) makes the order total, so pages
    never overlap.

    Args:
        columns: the sortable fields, by the name a client uses.
        default: the order when ``sort`` is left out, e.g. ``-created_at``.
        tiebreak: a unique column, ascending after the chosen one.

    Returns:
        The dependency; it returns the ``ORDER BY`` clauses.
    """
    values = tuple(value for name in columns for value in (name, f"-{name}"))
    assert default in values, f"{default} is not one of {values}"

    def order_by(sort: str = default) -> list[Any]:
        column = columns[sort.removeprefix("-")]
        ordered = column.desc() if sort.startswith("-") else column.asc()
        return [ordered.nulls_last(), tiebreak]

    order_by.__annotations__["sort"] = Annotated[
        Literal[values],
        Query(description="The field to sort by; `-field` for descending."),
    ]
    return order_by
