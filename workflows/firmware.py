"""FirmwareUpdate and LogUpload: a command, then the charger's notifications.

The API starts at most one of each per charger (ids ``firmware-<charger>``
and ``log-<charger>``) and reads the charger's answer to the command through
the ``answer`` update. An accepted operation then follows the status
notifications the ingress hands over (signal ``charger_status``: 1.6
FirmwareStatusNotification / DiagnosticsStatusNotification, 2.0.1
FirmwareStatusNotification / LogStatusNotification with the requestId) until
a final status or the deadline. Notifications may overtake the answer (they
travel another queue): they are kept and judged once the answer is in.
"""

import contextlib
from datetime import timedelta
from typing import Any, ClassVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from bus.contract import CommandOutcome, CommandResult
    from workflows import calls
    from workflows.operation_types import (
        ANSWER,
        CHARGER_STATUS,
        FIRMWARE_UPDATE,
        LOG_UPLOAD,
        OPERATION_ACCEPTED,
        VIEW,
        OperationInput,
        OperationState,
        OperationView,
        StatusNotice,
        StatusSeen,
    )

# How long a refused operation waits for the API to read the answer.
RESULT_GRACE = timedelta(seconds=60)
# A charger that reports more than this many statuses is not followed further.
MAX_STATUSES = 200


class _Tracked:
    """Send one command, then follow its notifications to a final status.

    Subclasses name the statuses that end the operation.
    """

    SUCCEEDED: ClassVar[frozenset[str]]
    FAILED: ClassVar[frozenset[str]]

    def __init__(self, input: OperationInput) -> None:
        self._input = input
        self._view = OperationView(
            charger_id=input.charger_id,
            action=input.command.action,
            request_id=input.request_id,
            state=OperationState.REQUESTED,
            requested_by=input.requested_by,
            created_at=workflow.now(),
            deadline=input.deadline,
        )
        self._failure: ApplicationError | None = None
        self._answer_read = False
        self._extra = {"charger_id": input.charger_id, "action": input.command.action}

    async def _run(self) -> OperationView:
        if await self._send():
            self._settle()
            await self._follow()
        else:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._answer_read, timeout=RESULT_GRACE
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    # -- Handlers ------------------------------------------------------------

    @workflow.update(name=ANSWER)
    async def answer(self) -> CommandResult:
        """Return the charger's answer to the command, once known.

        Raises:
            ApplicationError: ``ChargerOffline``, ``CommandTimeout`` or
                ``CommandFailed`` when the command got no answer.
        """
        await workflow.wait_condition(
            lambda: self._view.answer is not None or self._failure is not None
        )
        self._answer_read = True
        if self._view.answer is None:
            assert self._failure is not None
            raise self._failure
        return self._view.answer

    @workflow.signal(name=CHARGER_STATUS)
    def charger_status(self, notice: StatusNotice) -> None:
        """Take one status the charger reported about this operation.

        A status of another request (2.0.1 requestId) is ignored; so is any
        status once the operation has ended.
        """
        if self._view.state not in (
            OperationState.REQUESTED,
            OperationState.IN_PROGRESS,
        ):
            return
        ours = self._input.request_id
        if ours is not None and notice.request_id not in (None, ours):
            workflow.logger.info(
                "status %s of request %s ignored",
                notice.status,
                notice.request_id,
                extra=self._extra,
            )
            return
        if len(self._view.statuses) >= MAX_STATUSES:
            return
        seen = StatusSeen(status=notice.status, at=notice.at)
        self._set(status=notice.status, statuses=(*self._view.statuses, seen))
        workflow.logger.info("charger reports %s", notice.status, extra=self._extra)
        self._settle()

    @workflow.query(name=VIEW)
    def view(self) -> OperationView:
        """Return the operation as it is now."""
        return self._view

    # -- Steps ---------------------------------------------------------------

    async def _send(self) -> bool:
        """Send the command; return whether the charger took it on."""
        try:
            result = await calls.send_command(
                self._input.charger_id,
                self._input.command,
                self._input.requested_by,
                calls.COMMAND_RETRY,
            )
        except ApplicationError as exc:
            self._failure = exc
            self._end(OperationState.FAILED, reason=exc.type)
            return False

        self._set(answer=result)
        if (
            result.outcome is not CommandOutcome.ANSWERED
            or result.status not in OPERATION_ACCEPTED
        ):
            reason = result.status or result.error or result.outcome.value
            self._end(OperationState.REJECTED, reason=reason)
            return False
        self._set(state=OperationState.IN_PROGRESS)
        workflow.logger.info("%s accepted", self._view.action, extra=self._extra)
        return True

    async def _follow(self) -> None:
        """Wait for a final status until the deadline."""
        remaining = (self._input.deadline - workflow.now()).total_seconds()
        if remaining > 0:
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._view.state is not OperationState.IN_PROGRESS,
                    timeout=remaining,
                    timeout_summary="final status",
                )
        if self._view.state is OperationState.IN_PROGRESS:
            self._end(OperationState.TIMED_OUT, reason="no final status in time")

    def _settle(self) -> None:
        """End the running operation if the last status is a final one."""
        status = self._view.status
        if self._view.state is not OperationState.IN_PROGRESS or status is None:
            return
        if status in self.SUCCEEDED:
            self._end(OperationState.SUCCEEDED, reason=status)
        elif status in self.FAILED:
            self._end(OperationState.FAILED, reason=status)

    # -- Helpers -------------------------------------------------------------

    def _end(self, state: OperationState, **changes: Any) -> None:
        self._set(state=state, ended_at=workflow.now(), **changes)
        workflow.logger.info(
            "%s ended: %s (%s)",
            self._view.action,
            state,
            self._view.reason,
            extra=self._extra,
        )

    def _set(self, **changes: Any) -> None:
        self._view = self._view.model_copy(update=changes)


@workflow.defn(name=FIRMWARE_UPDATE)
class FirmwareUpdate(_Tracked):
    """Install new firmware: 1.6 or 2.0.1 UpdateFirmware, then its statuses."""

    SUCCEEDED = frozenset({"Installed"})
    FAILED = frozenset(
        {
            "DownloadFailed",
            "InstallationFailed",
            "InstallVerificationFailed",
            "InvalidSignature",
        }
    )

    @workflow.init
    def __init__(self, input: OperationInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: OperationInput) -> OperationView:
        """Update the firmware; return how it ended."""
        return await self._run()


@workflow.defn(name=LOG_UPLOAD)
class LogUpload(_Tracked):
    """Upload a log: 1.6 GetDiagnostics or 2.0.1 GetLog, then its statuses."""

    SUCCEEDED = frozenset({"Uploaded"})
    FAILED = frozenset(
        {
            "UploadFailed",  # 1.6
            "UploadFailure",  # 2.0.1
            "BadMessage",
            "NotSupportedOperation",
            "PermissionDenied",
        }
    )

    @workflow.init
    def __init__(self, input: OperationInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: OperationInput) -> OperationView:
        """Upload the log; return how it ended."""
        return await self._run()
