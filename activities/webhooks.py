"""Delivering domain events to webhooks: signed POSTs, each try logged.

The body is the event as JSON. ``Moovolt-Signature: t=<unix time>,v1=<hex>``
carries HMAC-SHA256 over ``"<t>.<body>"`` with the webhook's secret, so the
receiver can check both origin and freshness; ``Moovolt-Event-Id`` lets it
drop a repeat (delivery is at least once).
"""

import hashlib
import hmac
import time

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.types import ABANDON_WEBHOOK, DELIVER_WEBHOOK, WebhookInput
from store.webhooks import Webhook, WebhookDelivery

SIGNATURE_HEADER = "Moovolt-Signature"
# Answers that mean the receiver is gone for good: no more tries.
GONE = frozenset({410})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Return the ``Moovolt-Signature`` header value of ``body``."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookActivities:
    """Activities of ``WebhookDelivery``.

    Args:
        db: the process's session factory.
        http: the client deliveries go through.
    """

    def __init__(
        self, db: async_sessionmaker[AsyncSession], http: httpx.AsyncClient
    ) -> None:
        self._db = db
        self._http = http

    @activity.defn(name=DELIVER_WEBHOOK)
    async def deliver(self, input: WebhookInput) -> None:
        """POST the event once; raise (to be retried) unless it got a 2xx.

        Raises:
            ApplicationError: ``WebhookGone`` (not retried) when the webhook
                was deleted, deactivated or answered 410; ``WebhookFailed``
                for any other failed try.
        """
        async with self._db() as db:
            hook = await db.get(Webhook, input.webhook_id)
        if hook is None or not hook.active:
            raise ApplicationError(
                "webhook deleted or inactive", type="WebhookGone", non_retryable=True
            )

        body = input.event.model_dump_json().encode()
        now = int(time.time())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(hook.secret, now, body),
            "Moovolt-Event-Id": input.event.id,
            "Moovolt-Event-Type": input.event.type,
        }
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._http.post(hook.url, content=body, headers=headers)
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        elapsed = int((time.monotonic() - started) * 1000)

        delivered = status is not None and 200 <= status < 300
        await self._log(
            input, "delivered" if delivered else "failed", status, error, elapsed
        )
        if delivered:
            return
        activity.logger.info(
            "webhook %s answered %s to %s", hook.id, status or error, input.event.id
        )
        raise ApplicationError(
            f"webhook answered {status}" if status else f"webhook unreachable: {error}",
            type="WebhookGone" if status in GONE else "WebhookFailed",
            non_retryable=status in GONE,
        )

    @activity.defn(name=ABANDON_WEBHOOK)
    async def abandon(self, input: WebhookInput) -> None:
        """Log that the event will not be delivered to the webhook."""
        activity.logger.warning(
            "webhook %s: delivery of %s abandoned", input.webhook_id, input.event.id
        )
        await self._log(input, "abandoned", None, None, None)

    async def _log(
        self,
        input: WebhookInput,
        outcome: str,
        status: int | None,
        error: str | None,
        duration_ms: int | None,
    ) -> None:
        info = activity.info()
        async with self._db() as db:
            if await db.get(Webhook, input.webhook_id) is None:
                return  # deleted: nothing to log against
            db.add(
                WebhookDelivery(
                    webhook_id=input.webhook_id,
                    event_id=input.event.id,
                    event_type=input.event.type,
                    attempt=info.attempt,
                    outcome=outcome,
                    response_status=status,
                    error=error,
                    duration_ms=duration_ms,
                    payload=input.event.model_dump(mode="json"),
                )
            )
            await db.commit()
