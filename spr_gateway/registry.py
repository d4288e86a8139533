"""The chargers this gateway holds, one live connection per charge point id."""

from typing import Generic, Protocol, TypeVar


class Held(Protocol):
    @property
    def charger_id(self) -> str: ...


H = TypeVar("H", bound=Held)


class ChargerRegistry(Generic[H]):
    """Map charge point ids to their live connection; the newest one wins.

    All methods are synchronous so that a claim and the lookup of a command's
    target can never interleave with another claim.
    """

    def __init__(self) -> None:
        self._holders: dict[str, H] = {}

    def claim(self, holder: H) -> H | None:
        """Make ``holder`` the charger's connection; return the one it replaces."""
        previous = self._holders.get(holder.charger_id)
        self._holders[holder.charger_id] = holder
        return previous

    def release(self, holder: H) -> bool:
        """Forget ``holder``; return whether it was still the current one."""
        if self._holders.get(holder.charger_id) is not holder:
            return False
        del self._holders[holder.charger_id]
        return True

    def get(self, charger_id: str) -> H | None:
        """Return the charger's current connection, if this gateway holds it."""
        return self._holders.get(charger_id)

    def __contains__(self, charger_id: str) -> bool:
        return charger_id in self._holders

    def __len__(self) -> int:
        return len(self._holders)
