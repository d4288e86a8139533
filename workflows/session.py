"""The ChargeSession workflow: authorize, start, meter, stop and bill.

One workflow per transaction. The charger's messages reach it as updates
(``transaction_started``, ``transaction_ended``), meter progress as a
throttled signal, operators' requests as updates from the API. All I/O is in
activities (see ``workflows.calls``); the timers for silence, the
remote-start wait and the session limit live here. Long sessions continue as
new, carrying ``SessionProgress``.
"""

import contextlib
import functools
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.types import (
        CdrInput,
        Measure,
        RecordStartInput,
        RecordStopInput,
        measure,
    )
    from bus.contract import (
        AuthorizationStatus,
        CommandResult,
        IdTokenInfo,
        RemoteStart,
        RemoteStop,
    )
    from workflows import calls
    from workflows.types import (
        CHARGE_SESSION,
        CHARGER_ID,
        ID_TOKEN,
        METER_PROGRESS,
        REMOTE_START_RESULT,
        REQUEST_STOP,
        SESSION_STATE,
        TRANSACTION_ENDED,
        TRANSACTION_STARTED,
        TRANSACTION_UPDATED,
        VIEW,
        MeterProgress,
        SessionInput,
        SessionProgress,
        SessionState,
        SessionView,
        StopRequest,
        TransactionEndedInput,
        TransactionStartedInput,
        TransactionUpdatedInput,
        TransactionVerdict,
    )

MAX_DURATION_REASON = "MaxDurationExceeded"
STOPPABLE = frozenset(
    {SessionState.CHARGING, SessionState.SILENT, SessionState.REJECTED}
)
CLOSED_UNSTARTED = frozenset(
    {SessionState.REMOTE_START_REJECTED, SessionState.NEVER_STARTED}
)
# How long a failed remote start waits for the API to read the outcome.
RESULT_GRACE = timedelta(seconds=60)
# Histories from before a stop could wait for its start replay without it.
LATE_START_PATCH = "wait-for-late-start"


@workflow.defn(name=CHARGE_SESSION)
class ChargeSession:
    """One charge session, from the start request to the payment."""

    @workflow.init
    def __init__(self, input: SessionInput) -> None:
        self._input = input
        initial = (
            SessionState.REMOTE_START_REQUESTED
            if input.origin == "operator"
            else SessionState.AUTHORIZING
        )
        self._p = input.carried or SessionProgress(
            state=initial, connector_id=input.connector_id
        )
        self._extra = {
            "session_id": input.session_id,
            "charger_id": input.charger_id,
            "transaction_id": input.transaction_id,
        }
        # Handlers run concurrently with ``run``; these order their steps.
        self._start_seen = (
            self._p.id_token_info is not None or self._p.started_at is not None
        )
        self._start_recorded = self._start_seen
        self._stop_seen = False
        self._stop_recorded = False
        self._stop_verdict: IdTokenInfo | None = None
        self._remote_start_failure: ApplicationError | None = None
        self._remote_start_read = False
        self._heard = 0  # bumped by every sign of life from the charger
        self._check_at: datetime | None = None

    @workflow.run
    async def run(self, input: SessionInput) -> SessionProgress:
        """Drive the session to its end and return what it became."""
        self._upsert_search_attributes()
        if input.carried is None:
            workflow.logger.info("session opened", extra=self._extra)
            if input.origin == "operator" and not await self._remote_start():
                return await self._close_unstarted(SessionState.REMOTE_START_REJECTED)
            if not await self._wait_for_start():
                return await self._close_unstarted(SessionState.NEVER_STARTED)

        await self._meter()
        await workflow.wait_condition(lambda: self._stop_recorded)
        if not self._start_recorded and workflow.patched(LATE_START_PATCH):
            await self._wait_for_late_start()
        await self._bill()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._p

    # -- Handlers ------------------------------------------------------------

    @workflow.update(name=TRANSACTION_STARTED)
    async def transaction_started(
        self, input: TransactionStartedInput
    ) -> IdTokenInfo | None:
        """Authorize the charger's transaction and record its start.

        Idempotent: a repeat returns the verdict given the first time. A 2.0.1
        start without an id token is recorded as Authorizing; its token comes
        in ``transaction_updated``. A start that arrives after its stop (events
        queued offline) only completes the facts the bill needs.
        """
        if self._start_seen:
            await workflow.wait_condition(
                lambda: self._p.id_token_info is not None or self._start_recorded
            )
            return self._p.id_token_info
        self._start_seen = True

        info = self._p.id_token_info
        if input.id_token is not None:
            info = await calls.authorize(input.id_token, input.id_token_type)
        now = workflow.now()
        self._set(
            state=self._state_after_start(info),
            transaction_id=input.transaction_id or self._p.transaction_id,
            id_token=input.id_token or self._p.id_token,
            id_token_info=info,
            connector_id=input.connector_id,
            meter_start_wh=(
                input.meter_start_wh
                if input.meter_start_wh is not None
                else self._p.meter_start_wh
            ),
            started_at=input.timestamp,
            opened_at=now,
            last_activity_at=now,
        )
        self._heard += 1
        self._upsert_search_attributes()
        workflow.logger.info(
            "transaction started: %s",
            info.status if info else "no id token yet",
            extra=self._extra,
        )

        await calls.record_start(
            RecordStartInput(
                session_id=self._input.session_id,
                state=self._p.state,
                connector_id=input.connector_id,
                meter_start_wh=self._p.meter_start_wh,
                started_at=input.timestamp,
            )
        )
        self._start_recorded = True
        return info

    @transaction_started.validator
    def _validate_started(self, input: TransactionStartedInput) -> None:
        self._refuse_if_closed()

    @workflow.update(name=TRANSACTION_UPDATED)
    async def transaction_updated(
        self, input: TransactionUpdatedInput
    ) -> TransactionVerdict:
        """Take a 2.0.1 Updated event: new readings, a token presented late.

        Returns the verdict on the token the event carried, if any, and the
        running cost, priced as the CDR will be.
        """
        await workflow.wait_condition(
            lambda: self._start_recorded or not self._start_seen
        )
        self._heard += 1
        if input.register_wh is not None and input.sampled_at is not None:
            self.meter_progress(
                MeterProgress(
                    energy_register_wh=input.register_wh, sampled_at=input.sampled_at
                )
            )
        if input.charging_state is not None:
            self._set(charging_state=input.charging_state)

        info: IdTokenInfo | None = None
        if input.id_token:
            info = await self._token_presented(input.id_token, input.id_token_type)
        # Priced at the event's own time: replayed offline events come late.
        cost = self._figures(until=input.timestamp).cost
        return TransactionVerdict(id_token_info=info, total_cost=cost.total_incl_vat)

    @transaction_updated.validator
    def _validate_updated(self, input: TransactionUpdatedInput) -> None:
        self._refuse_if_closed()

    @workflow.update(name=TRANSACTION_ENDED)
    async def transaction_ended(
        self, input: TransactionEndedInput
    ) -> IdTokenInfo | None:
        """Record the charger's stop; the workflow then bills.

        Idempotent: a repeat returns the first verdict and changes nothing.
        """
        if self._stop_seen:
            await workflow.wait_condition(lambda: self._stop_recorded)
            return self._stop_verdict
        self._stop_seen = True
        # A start still being recorded goes first, so the row ends Stopped.
        await workflow.wait_condition(
            lambda: self._start_recorded or not self._start_seen
        )

        verdict: IdTokenInfo | None = None
        if input.id_token == self._token and self._p.id_token_info:
            verdict = self._p.id_token_info
        elif input.id_token:
            verdict = await calls.authorize(input.id_token, input.id_token_type)
        self._stop_verdict = verdict

        # Readings the start did not carry (2.0.1) come from the stored ones.
        if self._p.meter_start_wh is None and input.first_register_wh is not None:
            self._set(meter_start_wh=input.first_register_wh)
        if self._p.started_at is None and input.first_sample_at is not None:
            self._set(started_at=input.first_sample_at)

        # The session limit may have closed the session already.
        if self._p.stopped_at is None:
            meter_stop = input.meter_stop_wh
            if meter_stop is None:
                meter_stop = self._last_register()
            await self._stop(meter_stop, input.timestamp, input.reason)
        else:
            await workflow.wait_condition(lambda: self._stop_recorded)
        return verdict

    @transaction_ended.validator
    def _validate_ended(self, input: TransactionEndedInput) -> None:
        self._refuse_if_closed()

    @workflow.signal(name=METER_PROGRESS)
    def meter_progress(self, progress: MeterProgress) -> None:
        """Remember the newest register; any signal counts as a sign of life."""
        if self._p.stopped_at is not None:
            return
        self._heard += 1
        self._set(last_activity_at=workflow.now())
        if self._p.last_sample_at and progress.sampled_at <= self._p.last_sample_at:
            return
        register = progress.energy_register_wh
        self._set(
            last_sample_at=progress.sampled_at,
            last_register_wh=(
                register if register is not None else self._p.last_register_wh
            ),
        )

    @workflow.update(name=REMOTE_START_RESULT)
    async def remote_start_result(self) -> CommandResult:
        """Return the charger's answer to the RemoteStart, once known.

        Raises:
            ApplicationError: ``ChargerOffline``, ``CommandTimeout`` or
                ``CommandFailed`` when the command got no answer.
        """
        await workflow.wait_condition(
            lambda: (
                self._p.remote_start is not None
                or self._remote_start_failure is not None
            )
        )
        self._remote_start_read = True
        if self._p.remote_start is None:
            assert self._remote_start_failure is not None
            raise self._remote_start_failure
        return self._p.remote_start

    @remote_start_result.validator
    def _validate_remote_start_result(self) -> None:
        if self._input.origin != "operator":
            raise ApplicationError(
                "session was started by the charger",
                type="NotRemoteStarted",
                non_retryable=True,
            )

    @workflow.update(name=REQUEST_STOP)
    async def request_stop(self, request: StopRequest) -> CommandResult:
        """Ask the charger to stop; the session ends on its StopTransaction."""
        workflow.logger.info(
            "stop requested by %s", request.requested_by, extra=self._extra
        )
        return await calls.send_command(
            self._input.charger_id,
            RemoteStop(transaction_id=self._tx),
            request.requested_by,
            calls.COMMAND_RETRY,
        )

    @request_stop.validator
    def _validate_stop(self, request: StopRequest) -> None:
        if self._p.state not in STOPPABLE or self._p.stopped_at is not None:
            raise ApplicationError(
                f"session is {self._p.state}",
                type="SessionNotRunning",
                non_retryable=True,
            )

    @workflow.query(name=VIEW)
    def view(self) -> SessionView:
        """Return the session with its cost so far (or final cost)."""
        figures = self._figures()
        return SessionView(
            progress=self._p, energy_wh=figures.energy_wh, cost=figures.cost
        )

    # -- Steps ---------------------------------------------------------------

    async def _remote_start(self) -> bool:
        """Send RemoteStart; return whether the session may go on."""
        assert self._input.id_token is not None, "an operator start names a token"
        command = RemoteStart(
            connector_id=self._input.connector_id,
            id_token=self._input.id_token,
            remote_start_id=self._input.session_id,
        )
        try:
            result = await calls.send_command(
                self._input.charger_id, command, "operator", calls.REMOTE_START_RETRY
            )
        except ApplicationError as exc:
            self._remote_start_failure = exc
            accepted = False
        else:
            self._set(remote_start=result)
            accepted = result.accepted
        workflow.logger.info(
            "remote start %s", "accepted" if accepted else "refused", extra=self._extra
        )
        # The charger may have started before its answer came back.
        return accepted or self._start_seen

    async def _wait_for_start(self) -> bool:
        """Wait for the transaction to start (or end); False on timeout."""
        try:
            await workflow.wait_condition(
                lambda: self._start_seen or self._stop_seen,
                timeout=timedelta(seconds=self._input.timeouts.remote_start_s),
                timeout_summary="transaction start",
            )
        except TimeoutError:
            return False
        await workflow.wait_condition(lambda: self._start_recorded or self._stop_seen)
        return True

    async def _close_unstarted(self, state: SessionState) -> SessionProgress:
        """End a session that never started: no CDR, nothing to pay."""
        await self._change_state(state)
        if state is SessionState.REMOTE_START_REJECTED:
            # Let the API's remote_start_result read the outcome first.
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._remote_start_read, timeout=RESULT_GRACE
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.logger.info("session closed: %s", state, extra=self._extra)
        return self._p

    async def _meter(self) -> None:
        """Watch the running session until it stops or continues as new."""
        silence = timedelta(seconds=self._input.timeouts.meter_silence_s)
        opened_at = self._p.opened_at or workflow.now()
        deadline = opened_at + timedelta(seconds=self._input.timeouts.max_duration_s)
        self._check_at = (self._p.last_activity_at or opened_at) + silence

        while self._p.stopped_at is None:
            if self._history_is_long():
                await self._continue_as_new()
                continue

            heard = self._heard
            timeout = (min(self._check_at, deadline) - workflow.now()).total_seconds()
            if timeout > 0:
                with contextlib.suppress(TimeoutError):
                    await workflow.wait_condition(
                        functools.partial(self._stopped_or_heard, heard),
                        timeout=timeout,
                        timeout_summary="meter silence or session limit",
                    )
            if self._p.stopped_at is not None:
                return

            now = workflow.now()
            if self._heard != heard:
                self._check_at = now + silence
                if self._p.state is SessionState.SILENT:
                    await self._change_state(SessionState.CHARGING)
            elif now >= deadline:
                await self._close_at_limit()
            elif now >= self._check_at:
                await self._check_silence(silence)

    async def _check_silence(self, silence: timedelta) -> None:
        """Look in PostgreSQL for data the signals missed; else go Silent."""
        progress = await calls.read_progress(self._input.charger_id, self._tx)
        self._check_at = workflow.now() + silence
        last = self._p.last_sample_at
        if progress is not None and (last is None or progress.sampled_at > last):
            self.meter_progress(progress)
            if self._p.state is SessionState.SILENT:
                await self._change_state(SessionState.CHARGING)
        elif self._p.state is SessionState.CHARGING:
            workflow.logger.info("no meter values: silent", extra=self._extra)
            await self._change_state(SessionState.SILENT)

    async def _close_at_limit(self) -> None:
        """Close a session open for longer than its limit, at its last reading."""
        workflow.logger.warning("session limit reached", extra=self._extra)
        await self._stop(self._last_register(), workflow.now(), MAX_DURATION_REASON)

    async def _stop(
        self, meter_stop_wh: Decimal, stopped_at: datetime, reason: str | None
    ) -> None:
        self._set(
            state=SessionState.STOPPED,
            meter_stop_wh=meter_stop_wh,
            stopped_at=stopped_at,
            stop_reason=reason,
        )
        self._upsert_search_attributes()
        figures = measure(
            self._input.tariff,
            self._p.meter_start_wh,
            meter_stop_wh,
            self._p.started_at,
            stopped_at,
        )
        await calls.record_stop(
            RecordStopInput(
                session_id=self._input.session_id,
                meter_stop_wh=meter_stop_wh,
                energy_wh=figures.energy_wh,
                stopped_at=stopped_at,
                reason=reason,
            )
        )
        self._stop_recorded = True
        workflow.logger.info("transaction ended: %s", reason, extra=self._extra)

    async def _bill(self) -> None:
        """Write the CDR, take the payment, and mark the session billed."""
        p = self._p
        assert p.stopped_at is not None and p.meter_stop_wh is not None
        cdr = await calls.write_cdr(
            CdrInput(
                session_id=self._input.session_id,
                workflow_id=workflow.info().workflow_id,
                charger_id=self._input.charger_id,
                connector_id=p.connector_id,
                transaction_id=self._tx,
                id_token=self._token,
                tariff=self._input.tariff,
                # A stop whose start was never seen bills no energy.
                meter_start_wh=(
                    p.meter_start_wh
                    if p.meter_start_wh is not None
                    else p.meter_stop_wh
                ),
                meter_stop_wh=p.meter_stop_wh,
                started_at=p.started_at or p.stopped_at,
                stopped_at=p.stopped_at,
            )
        )
        self._set(cdr_id=cdr.id)

        receipt = await calls.take_payment(cdr.id)
        if receipt is None:
            workflow.logger.warning("payment declined", extra=self._extra)
            await self._change_state(SessionState.PAYMENT_DECLINED)
            return
        self._set(payment_status=receipt.status.value)
        await self._change_state(SessionState.BILLED)
        workflow.logger.info(
            "billed %s %s",
            cdr.cost.total_incl_vat,
            cdr.cost.currency,
            extra=self._extra,
        )

    async def _wait_for_late_start(self) -> None:
        """Give a start queued behind its stop a moment before billing."""
        workflow.logger.info("stopped before its start was seen", extra=self._extra)
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._start_recorded,
                timeout=timedelta(seconds=self._input.timeouts.start_grace_s),
                timeout_summary="late transaction start",
            )
        if not self._start_recorded:
            return
        # The start's register replaces the earliest stored one: re-record.
        p = self._p
        assert p.meter_stop_wh is not None and p.stopped_at is not None
        await calls.record_stop(
            RecordStopInput(
                session_id=self._input.session_id,
                meter_stop_wh=p.meter_stop_wh,
                energy_wh=self._figures().energy_wh,
                stopped_at=p.stopped_at,
                reason=p.stop_reason,
            )
        )

    async def _token_presented(
        self, id_token: str, id_token_type: str | None
    ) -> IdTokenInfo:
        """Judge a token presented after the start; it becomes the session's."""
        if id_token == self._token and self._p.id_token_info is not None:
            return self._p.id_token_info
        info = await calls.authorize(id_token, id_token_type)
        self._set(id_token=id_token, id_token_info=info)
        if self._start_seen and self._p.stopped_at is None:
            self._set(state=self._state_after_start(info))
        self._upsert_search_attributes()
        workflow.logger.info("id token presented: %s", info.status, extra=self._extra)
        await calls.record_id_token(self._input.session_id, id_token, self._p.state)
        return info

    # -- Helpers -------------------------------------------------------------

    @property
    def _tx(self) -> str:
        """The transaction id the charger knows the session by."""
        return self._p.transaction_id or self._input.transaction_id

    @property
    def _token(self) -> str | None:
        return self._p.id_token or self._input.id_token

    def _state_after_start(self, info: IdTokenInfo | None) -> SessionState:
        if self._p.stopped_at is not None:
            return self._p.state
        if info is None:
            return SessionState.AUTHORIZING
        if info.status is AuthorizationStatus.ACCEPTED:
            return SessionState.CHARGING
        return SessionState.REJECTED

    def _last_register(self) -> Decimal:
        for register in (self._p.last_register_wh, self._p.meter_start_wh):
            if register is not None:
                return register
        return Decimal(0)

    def _figures(self, until: datetime | None = None) -> Measure:
        """Energy, duration and cost so far (final once stopped).

        Args:
            until: the end of a running session's time; now if None.
        """
        p = self._p
        return measure(
            self._input.tariff,
            p.meter_start_wh,
            p.meter_stop_wh if p.meter_stop_wh is not None else p.last_register_wh,
            p.started_at,
            p.stopped_at or until or workflow.now(),
        )

    def _set(self, **changes: Any) -> None:
        self._p = self._p.model_copy(update=changes)

    async def _change_state(self, state: SessionState) -> None:
        """Move to ``state`` in the workflow, its search attribute and its row."""
        self._set(state=state)
        self._upsert_search_attributes()
        await calls.record_state(self._input.session_id, state)

    def _upsert_search_attributes(self) -> None:
        current = workflow.info().typed_search_attributes
        updates = []
        if current.get(CHARGER_ID) is None:
            updates.append(CHARGER_ID.value_set(self._input.charger_id))
        if current.get(ID_TOKEN) != self._token and self._token is not None:
            updates.append(ID_TOKEN.value_set(self._token))
        if current.get(SESSION_STATE) != self._p.state.value:
            updates.append(SESSION_STATE.value_set(self._p.state.value))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _stopped_or_heard(self, heard: int) -> bool:
        return self._p.stopped_at is not None or self._heard != heard

    def _refuse_if_closed(self) -> None:
        if self._p.state in CLOSED_UNSTARTED:
            raise ApplicationError(
                f"session is {self._p.state}", type="SessionClosed", non_retryable=True
            )

    def _history_is_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.max_history_events
        )

    async def _continue_as_new(self) -> None:
        """Continue as new once no handler is mid-way; not if a stop came."""
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._p.stopped_at is not None:
            return
        workflow.logger.info("continuing as new", extra=self._extra)
        workflow.continue_as_new(self._input.model_copy(update={"carried": self._p}))
