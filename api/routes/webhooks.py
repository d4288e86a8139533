"""Webhooks: other systems subscribe to domain events over HTTP (admin only).

Deliveries are signed, retried with backoff by a ``WebhookDelivery``
workflow per event, and every try is in the delivery log.
"""

import secrets
from typing import Literal

from fastapi import APIRouter
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import AdminDep, IntId, Limit, Offset, SessionDep
from api.paging import fetch_page
from api.problems import ProblemError, documented
from api.webhook_models import (
    WebhookCreate,
    WebhookCreated,
    WebhookDeliveryPage,
    WebhookDeliveryPublic,
    WebhookPage,
    WebhookPublic,
    WebhookUpdate,
)
from store.webhooks import Webhook, WebhookDelivery

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


async def _webhook(db: AsyncSession, webhook_id: int) -> Webhook:
    hook = await db.get(Webhook, webhook_id)
    if hook is None:
        raise ProblemError(404, "Not Found", f"No webhook {webhook_id}.")
    return hook


@router.post("", status_code=201, responses=documented(401, 403, 422))
async def create_webhook(
    body: WebhookCreate, db: SessionDep, admin: AdminDep
) -> WebhookCreated:
    """Subscribe a URL to domain events; the signing secret is shown once."""
    hook = Webhook(
        url=str(body.url),
        secret=secrets.token_urlsafe(32),
        event_types=body.event_types,
        description=body.description,
        created_by=admin.name,
    )
    db.add(hook)
    await db.commit()
    await db.refresh(hook)
    return WebhookCreated.model_validate(hook, from_attributes=True)


@router.get("", responses=documented(401, 403))
async def list_webhooks(
    db: SessionDep,
    _: AdminDep,
    active: bool | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WebhookPage:
    """List webhooks (without their secrets)."""
    where = [] if active is None else [col(Webhook.active) == active]
    total, rows = await fetch_page(
        db, Webhook, where, [col(Webhook.id)], limit=limit, offset=offset
    )
    return WebhookPage(
        items=[WebhookPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/{webhook_id}", responses=documented(401, 403, 404))
async def get_webhook(webhook_id: IntId, db: SessionDep, _: AdminDep) -> WebhookPublic:
    """Return one webhook."""
    return WebhookPublic.model_validate(await _webhook(db, webhook_id))


@router.patch("/{webhook_id}", responses=documented(401, 403, 404, 422))
async def update_webhook(
    webhook_id: IntId, body: WebhookUpdate, db: SessionDep, _: AdminDep
) -> WebhookPublic:
    """Change a webhook's URL, event types, description or activity."""
    hook = await _webhook(db, webhook_id)
    changes = body.model_dump(exclude_unset=True)
    if changes.get("url") is not None:
        changes["url"] = str(body.url)
    for name, value in changes.items():
        if value is not None or name == "description":
            setattr(hook, name, value)
    db.add(hook)
    await db.commit()
    await db.refresh(hook)
    return WebhookPublic.model_validate(hook)


@router.delete("/{webhook_id}", status_code=204, responses=documented(401, 403, 404))
async def delete_webhook(webhook_id: IntId, db: SessionDep, _: AdminDep) -> None:
    """Stop deliveries to a webhook; its delivery log is kept."""
    hook = await _webhook(db, webhook_id)
    hook.active = False
    db.add(hook)
    await db.commit()


@router.get("/{webhook_id}/deliveries", responses=documented(401, 403, 404))
async def list_deliveries(
    webhook_id: IntId,
    db: SessionDep,
    _: AdminDep,
    outcome: Literal["delivered", "failed", "abandoned"] | None = None,
    event_id: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> WebhookDeliveryPage:
    """List a webhook's delivery tries, newest first."""
    await _webhook(db, webhook_id)
    where = [col(WebhookDelivery.webhook_id) == webhook_id]
    if outcome is not None:
        where.append(col(WebhookDelivery.outcome) == outcome)
    if event_id is not None:
        where.append(col(WebhookDelivery.event_id) == event_id)
    total, rows = await fetch_page(
        db,
        WebhookDelivery,
        where,
        [col(WebhookDelivery.id).desc()],
        limit=limit,
        offset=offset,
    )
    return WebhookDeliveryPage(
        items=[WebhookDeliveryPublic.model_validate(row) for row in rows],
        total=total,
        limit=limit,
        offset=offset,
    )
