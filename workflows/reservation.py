"""The Reservation workflow: one connector held for one id token until expiry.

The API starts one workflow per reservation (id
``reservation-<charger>-<reservation id>``) and reads the charger's answer to
ReserveNow through the ``answer`` update. An accepted reservation waits on a
durable timer until it expires, unless an operator cancels it (update
``cancel``, which sends CancelReservation), a transaction starts on it (signal
``used``, from the ingress) or a 2.0.1 charger ends it itself (signal
``charger_status``: ReservationStatusUpdate). At expiry it looks in the
session table for a start the ingress could not report, then ends Used or
Expired. Its view is also its memo, so that lists show it without a query.
"""

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from bus.contract import CommandResult
    from workflows import calls
    from workflows.operation_types import (
        ANSWER,
        CANCEL,
        CHARGER_STATUS,
        FIND_RESERVATION_USE,
        RESERVATION,
        RESERVATION_NOT_ACTIVE,
        USED,
        VIEW,
        CancelRequest,
        ReservationInput,
        ReservationState,
        ReservationUse,
        ReservationUseQuery,
        ReservationView,
        StatusNotice,
    )

# How long a refused reservation waits for the API to read the answer.
RESULT_GRACE = timedelta(seconds=60)
# A session opened this long before the reservation still counts as its use
# (the API and the worker do not share a clock).
USE_SLACK = timedelta(seconds=5)
# What a 2.0.1 ReservationStatusUpdate ends the reservation as.
CHARGER_ENDINGS = {
    "Expired": ReservationState.EXPIRED,
    "Removed": ReservationState.CANCELLED,
}


@workflow.defn(name=RESERVATION)
class Reservation:
    """Hold one reservation at one charger from ReserveNow to its end."""

    @workflow.init
    def __init__(self, input: ReservationInput) -> None:
        self._input = input
        self._view = ReservationView(
            reservation_id=input.reservation_id,
            charger_id=input.charger_id,
            connector_id=input.connector_id,
            id_token=input.id_token,
            expires_at=input.expires_at,
            state=ReservationState.REQUESTED,
            requested_by=input.requested_by,
            created_at=workflow.now(),
        )
        self._failure: ApplicationError | None = None
        self._answer_read = False
        self._cancelling = 0
        self._extra = {
            "charger_id": input.charger_id,
            "reservation_id": input.reservation_id,
        }

    @workflow.run
    async def run(self, input: ReservationInput) -> ReservationView:
        """Reserve, hold until the reservation ends, and return how it ended."""
        self._memo()
        if await self._reserve():
            await self._hold()
        else:
            # Let the API's ``answer`` read the outcome first.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._answer_read, timeout=RESULT_GRACE
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    # -- Handlers ------------------------------------------------------------

    @workflow.update(name=ANSWER)
    async def answer(self) -> CommandResult:
        """Return the charger's answer to ReserveNow, once known.

        Raises:
            ApplicationError: ``ChargerOffline``, ``CommandTimeout`` or
                ``CommandFailed`` when ReserveNow got no answer.
        """
        await workflow.wait_condition(
            lambda: self._view.answer is not None or self._failure is not None
        )
        self._answer_read = True
        if self._view.answer is None:
            assert self._failure is not None
            raise self._failure
        return self._view.answer

    @workflow.update(name=CANCEL)
    async def cancel(self, request: CancelRequest) -> CommandResult:
        """Send CancelReservation; the reservation ends if the charger accepts.

        Returns:
            The charger's answer, whatever it was.

        Raises:
            ApplicationError: the command got no answer (see ``calls``).
        """
        workflow.logger.info(
            "cancel requested by %s", request.requested_by, extra=self._extra
        )
        self._cancelling += 1
        try:
            result = await calls.send_command(
                self._input.charger_id,
                self._input.cancel,
                request.requested_by,
                calls.COMMAND_RETRY,
            )
        finally:
            self._cancelling -= 1
        if result.accepted:
            self._end(
                ReservationState.CANCELLED,
                reason=f"cancelled by {request.requested_by}",
            )
        return result

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        if self._view.state is not ReservationState.RESERVED:
            raise ApplicationError(
                f"reservation is {self._view.state}",
                type=RESERVATION_NOT_ACTIVE,
                non_retryable=True,
            )

    @workflow.signal(name=USED)
    def used(self, use: ReservationUse) -> None:
        """A transaction started on the reservation: it is used."""
        self._end(
            ReservationState.USED,
            reason="transaction started",
            transaction_id=use.transaction_id,
        )

    @workflow.signal(name=CHARGER_STATUS)
    def charger_status(self, notice: StatusNotice) -> None:
        """The charger ended the reservation itself (2.0.1)."""
        ending = CHARGER_ENDINGS.get(notice.status)
        if ending is None:
            workflow.logger.warning(
                "unknown reservation status %s", notice.status, extra=self._extra
            )
            return
        self._end(ending, reason=f"{notice.status} by the charger")

    @workflow.query(name=VIEW)
    def view(self) -> ReservationView:
        """Return the reservation as it is now."""
        return self._view

    # -- Steps ---------------------------------------------------------------

    async def _reserve(self) -> bool:
        """Send ReserveNow; return whether the charger holds the reservation."""
        try:
            result = await calls.send_command(
                self._input.charger_id,
                self._input.reserve,
                self._input.requested_by,
                calls.COMMAND_RETRY,
            )
        except ApplicationError as exc:
            self._failure = exc
            self._set(state=ReservationState.FAILED, reason=exc.type)
            self._finish()
            return False

        self._set(answer=result)
        if not result.accepted:
            reason = result.status or result.error or result.outcome.value
            self._set(state=ReservationState.REJECTED, reason=reason)
            self._finish()
            return False
        self._set(state=ReservationState.RESERVED)
        self._memo()
        return True

    async def _hold(self) -> None:
        """Wait until the reservation ends or expires; at expiry, settle it."""
        remaining = (self._input.expires_at - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: not self._active,
                    timeout=remaining,
                    timeout_summary="reservation expiry",
                )
        if not self._active:
            return

        # A cancel in flight decides first.
        await workflow.wait_condition(lambda: self._cancelling == 0)
        if not self._active:
            return
        use: ReservationUse | None = await workflow.execute_activity(
            FIND_RESERVATION_USE,
            ReservationUseQuery(
                charger_id=self._input.charger_id,
                connector_id=self._input.connector_id,
                id_token=self._input.id_token,
                since=self._view.created_at - USE_SLACK,
                until=self._input.expires_at,
            ),
            result_type=ReservationUse,
            start_to_close_timeout=calls.DB_TIMEOUT,
            retry_policy=calls.DB_RETRY,
        )
        if use is not None:
            self.used(use)
        else:
            self._end(ReservationState.EXPIRED, reason="expiry reached")

    # -- Helpers -------------------------------------------------------------

    @property
    def _active(self) -> bool:
        return self._view.state is ReservationState.RESERVED

    def _end(self, state: ReservationState, **changes: Any) -> None:
        """End an active reservation as ``state``; an ended one stays as it is."""
        if not self._active:
            return
        self._set(state=state, **changes)
        self._finish()

    def _finish(self) -> None:
        self._set(ended_at=workflow.now())
        self._memo()
        workflow.logger.info(
            "reservation ended: %s (%s)",
            self._view.state,
            self._view.reason,
            extra=self._extra,
        )

    def _set(self, **changes: Any) -> None:
        self._view = self._view.model_copy(update=changes)

    def _memo(self) -> None:
        workflow.upsert_memo({"reservation": self._view.model_dump(mode="json")})
