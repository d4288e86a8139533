"""Tariffs: what a charge costs, and which chargers charge by which.

A session takes a snapshot of its charger's tariff (or the default one) when
it opens, so editing a tariff never reprices a session already running. At
most one tariff is the default; making one the default unmakes the other.
"""

import logging
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import IntId, Limit, Offset, OperatorDep, SessionDep, ViewerDep
from api.models import ChargerPage, Page, Text, no_nul, unchanged
from api.paging import fetch_page, sorting
from api.problems import ProblemError, documented
from api.routes.chargers import SORT as CHARGER_SORT
from api.routes.chargers import charger_page
from store.models import Charger, Tariff

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/tariffs", tags=["tariffs"])

Name = Annotated[Text, Field(min_length=1, max_length=100)]
Currency = Annotated[
    str, Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")
]
# Numeric(14, 4) columns: ten digits before the point, four after.
Price = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]
VatPercent = Annotated[Decimal, Field(ge=0, le=100, max_digits=7, decimal_places=4)]


class TariffCreate(BaseModel):
    """A tariff: energy, time and a fixed fee per session, plus VAT."""

    name: Name
    currency: Currency = "EUR"
    price_per_kwh: Price = Decimal(0)
    price_per_minute: Price = Decimal(0)
    price_per_session: Price = Decimal(0)
    vat_percent: VatPercent = Decimal(0)
    is_default: bool = Field(
        default=False,
        description="The tariff of chargers without one of their own.",
    )


class TariffUpdate(BaseModel):
    """Change a tariff; fields left out stay. Running sessions keep theirs."""

    name: Name = unchanged()
    currency: Currency = unchanged()
    price_per_kwh: Price = unchanged()
    price_per_minute: Price = unchanged()
    price_per_session: Price = unchanged()
    vat_percent: VatPercent = unchanged()
    is_default: bool = unchanged(
        description="true makes it the default; false leaves none."
    )


class TariffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    currency: str
    price_per_kwh: Decimal
    price_per_minute: Decimal
    price_per_session: Decimal
    vat_percent: Decimal
    is_default: bool
    charger_count: int = Field(description="How many chargers charge by it.")
    created_at: datetime


class TariffPage(Page[TariffPublic]):
    pass


SORT = sorting(
    {
        "id": col(Tariff.id),
        "name": col(Tariff.name),
        "created_at": col(Tariff.created_at),
    },
    default="id",
    tiebreak=col(Tariff.id),
)
NamePrefix = Annotated[
    str | None,
    Query(max_length=100, description="Only names starting with this, any case."),
    AfterValidator(no_nul),
]
CurrencyQuery = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$")]


async def _charger_counts(db: AsyncSession, ids: list[int]) -> dict[int, int]:
    found = await db.exec(
        select(col(Charger.tariff_id), func.count())
        .where(col(Charger.tariff_id).in_(ids))
        .group_by(col(Charger.tariff_id))
    )
    return {tariff_id: count for tariff_id, count in found if tariff_id is not None}


async def _public(db: AsyncSession, tariff: Tariff) -> TariffPublic:
    assert tariff.id is not None
    counts = await _charger_counts(db, [tariff.id])
    return TariffPublic.model_validate(
        {**tariff.model_dump(), "charger_count": counts.get(tariff.id, 0)}
    )


async def _get(db: AsyncSession, tariff_id: int) -> Tariff:
    tariff = await db.get(Tariff, tariff_id)
    if tariff is None:
        raise ProblemError(404, "Not Found", f"No tariff {tariff_id}.")
    return tariff


async def _check_name(db: AsyncSession, name: str, tariff_id: int | None) -> None:
    found = await db.exec(select(Tariff.id).where(col(Tariff.name) == name))
    other = found.first()
    if other is not None and other != tariff_id:
        raise ProblemError(
            409,
            "tariff exists",
            f"Tariff {other} has that name already.",
            kind="tariff-exists",
            tariff_id=other,
        )


async def _clear_default(db: AsyncSession) -> None:
    await db.exec(update(Tariff).where(col(Tariff.is_default)).values(is_default=False))


@router.get("", responses=documented(401, 403))
async def list_tariffs(
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(SORT)],
    is_default: bool | None = None,
    currency: CurrencyQuery = None,
    q: NamePrefix = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> TariffPage:
    """List tariffs, with how many chargers use each, by id unless sorted."""
    where: list[ColumnElement[bool]] = []
    if is_default is not None:
        where.append(col(Tariff.is_default) == is_default)
    if currency is not None:
        where.append(col(Tariff.currency) == currency)
    if q:
        where.append(col(Tariff.name).istartswith(q, autoescape=True))
    total, rows = await fetch_page(db, Tariff, where, order, limit=limit, offset=offset)
    counts = await _charger_counts(db, [row.id for row in rows if row.id])
    items = [
        TariffPublic.model_validate(
            {**row.model_dump(), "charger_count": counts.get(row.id or 0, 0)}
        )
        for row in rows
    ]
    return TariffPage(items=items, total=total, limit=limit, offset=offset)


@router.post("", status_code=201, responses=documented(401, 403, 409))
async def create_tariff(
    body: TariffCreate, response: Response, db: SessionDep, operator: OperatorDep
) -> TariffPublic:
    """Create a tariff; as the default, it replaces the default one."""
    await _check_name(db, body.name, None)
    if body.is_default:
        await _clear_default(db)
    tariff = Tariff(**body.model_dump())
    db.add(tariff)
    await db.commit()
    await db.refresh(tariff)  # the prices as stored, to four places
    logger.info("tariff %s created", tariff.id, extra={"by": operator.name})
    response.headers["Location"] = f"/api/v1/tariffs/{tariff.id}"
    return await _public(db, tariff)


@router.get("/{tariff_id}", responses=documented(401, 403, 404))
async def get_tariff(tariff_id: IntId, db: SessionDep, _: ViewerDep) -> TariffPublic:
    """Return one tariff."""
    return await _public(db, await _get(db, tariff_id))


@router.patch("/{tariff_id}", responses=documented(401, 403, 404, 409))
async def update_tariff(
    tariff_id: IntId, body: TariffUpdate, db: SessionDep, operator: OperatorDep
) -> TariffPublic:
    """Change a tariff; sessions that open from now on are priced by it.

    Sessions running keep the snapshot they started with.
    """
    tariff = await _get(db, tariff_id)
    changes = body.model_dump(exclude_unset=True)
    if "name" in changes:
        await _check_name(db, changes["name"], tariff_id)
    if changes.get("is_default") and not tariff.is_default:
        await _clear_default(db)

    for field, value in changes.items():
        setattr(tariff, field, value)
    db.add(tariff)
    await db.commit()
    await db.refresh(tariff)
    logger.info(
        "tariff %s changed: %s",
        tariff_id,
        ", ".join(sorted(changes)) or "nothing",
        extra={"by": operator.name},
    )
    return await _public(db, tariff)


@router.delete(
    "/{tariff_id}", status_code=204, responses=documented(401, 403, 404, 409)
)
async def delete_tariff(
    tariff_id: IntId, db: SessionDep, operator: OperatorDep
) -> None:
    """Delete a tariff no charger uses and that is not the default.

    Sessions and CDRs priced by it keep their snapshot.
    """
    tariff = await _get(db, tariff_id)
    if tariff.is_default:
        raise ProblemError(
            409,
            "tariff is the default",
            f"Tariff {tariff_id} is the default: make another the default first.",
            kind="tariff-is-default",
        )
    count = (await _charger_counts(db, [tariff_id])).get(tariff_id, 0)
    if count:
        raise ProblemError(
            409,
            "tariff in use",
            f"{count} charger(s) use tariff {tariff_id}: give them another first.",
            kind="tariff-in-use",
            charger_count=count,
        )

    await db.delete(tariff)
    await db.commit()
    logger.info("tariff %s deleted", tariff_id, extra={"by": operator.name})


@router.get("/{tariff_id}/chargers", responses=documented(401, 403, 404))
async def list_tariff_chargers(
    tariff_id: IntId,
    db: SessionDep,
    _: ViewerDep,
    order: Annotated[list[Any], Depends(CHARGER_SORT)],
    limit: Limit = 50,
    offset: Offset = 0,
) -> ChargerPage:
    """List the chargers that charge by this tariff (not by the default)."""
    await _get(db, tariff_id)
    where = [col(Charger.tariff_id) == tariff_id]
    return await charger_page(db, where, order, limit=limit, offset=offset)
