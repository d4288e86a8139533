"""The ChargerCommand workflow: one operator's command to one charger.

For commands that belong to no charge session (device model, configuration):
the API starts one workflow per command, with id ``command-<uuid>``, and waits
for its result. The command goes out through the ``send_command`` activity,
which audits it and completes when the charger's answer comes back.
"""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from bus.contract import CommandResult
    from workflows import calls
    from workflows.types import CHARGER_COMMAND, CommandInput


@workflow.defn(name=CHARGER_COMMAND)
class ChargerCommand:
    """Send one command to one charger and return the charger's answer."""

    @workflow.run
    async def run(self, input: CommandInput) -> CommandResult:
        """Send the command; return the answer, whatever the charger said.

        Raises:
            ApplicationError: ``ChargerOffline`` when no gateway holds the
                charger, ``CommandTimeout`` when no answer came in time,
                ``CommandFailed`` otherwise (from ``calls.send_command``).
        """
        extra = {"charger_id": input.charger_id, "requested_by": input.requested_by}
        workflow.logger.info("sending %s", input.command.kind, extra=extra)

        result = await calls.send_command(
            input.charger_id, input.command, input.requested_by, calls.COMMAND_RETRY
        )
        workflow.logger.info(
            "%s answered: %s %s",
            input.command.kind,
            result.outcome.value,
            result.status,
            extra=extra,
        )
        return result
