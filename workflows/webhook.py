"""The WebhookDelivery workflow: one domain event to one webhook, until it lands.

Its id, ``webhook-<hook>-<event id>``, makes a repeated event one delivery.
The activity is retried with backoff (each try logged in
``webhook_delivery``) for as long as ``give_up_after_s``; then the delivery
is logged as abandoned and the workflow fails, visible in Temporal UI.
"""

from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import ABANDON_WEBHOOK, DELIVER_WEBHOOK, WebhookInput

WEBHOOK_DELIVERY = "WebhookDelivery"
# A webhook endpoint has this long to answer one try.
TRY_TIMEOUT = timedelta(seconds=30)


class WebhookPlan(BaseModel):
    """Input of ``WebhookDelivery``: what to deliver and how long to try."""

    model_config = ConfigDict(frozen=True)

    delivery: WebhookInput
    retry_initial_s: float = 5.0
    retry_max_s: float = 600.0
    give_up_after_s: float = 86_400.0


def webhook_workflow_id(webhook_id: int, event_id: str) -> str:
    return f"webhook-{webhook_id}-{event_id}"


@workflow.defn(name=WEBHOOK_DELIVERY)
class WebhookDelivery:
    """Deliver one event to one webhook, retrying with backoff."""

    @workflow.run
    async def run(self, plan: WebhookPlan) -> None:
        """Deliver; log the delivery abandoned if every try failed.

        Raises:
            ApplicationError: ``WebhookAbandoned`` once the tries are over.
        """
        try:
            await workflow.execute_activity(
                DELIVER_WEBHOOK,
                plan.delivery,
                start_to_close_timeout=TRY_TIMEOUT,
                schedule_to_close_timeout=timedelta(seconds=plan.give_up_after_s),
                retry_policy=RetryPolicy(
                    initial_interval=timedelta(seconds=plan.retry_initial_s),
                    backoff_coefficient=2.0,
                    maximum_interval=timedelta(seconds=plan.retry_max_s),
                    non_retryable_error_types=["WebhookGone"],
                ),
            )
        except ActivityError as exc:
            await workflow.execute_activity(
                ABANDON_WEBHOOK,
                plan.delivery,
                start_to_close_timeout=TRY_TIMEOUT,
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            raise ApplicationError(
                "webhook delivery abandoned", type="WebhookAbandoned"
            ) from exc
