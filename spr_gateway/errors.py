"""Exceptions that carry a failure to the place that answers for it."""

from typing import TypeVar

from bus.contract import CommandOutcome, Decision

D = TypeVar("D", bound=Decision)


class CallErrorReply(Exception):
    """Answer the charger's CALL with a CALLERROR.

    Only raise this with text the charger may read: it goes on the wire.
    """

    def __init__(self, code: str, description: str) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description


class UnexpectedDecision(Exception):
    """The SG answered with a decision that does not fit the request."""


def expect(decision: Decision, kind: type[D]) -> D:
    """Return ``decision`` if it is a ``kind``.

    Raises:
        UnexpectedDecision: it is another kind of decision.
    """
    if not isinstance(decision, kind):
        raise UnexpectedDecision(
            f"expected a {kind.__name__}, got a {type(decision).__name__}"
        )
    return decision


class CommandNotSent(Exception):
    """A command cannot be expressed as a call of the charger's version."""

    def __init__(self, outcome: CommandOutcome, error: str) -> None:
        super().__init__(outcome, error)
        self.outcome = outcome
        self.error = error
