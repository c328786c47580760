"""The service's own "who may" rules, in one place. The command registry's Permissions (commands.py) decides
who may run a command at all; these are the finer rules inside an operation ("only the Incident Lead or a bot
admin may close it"), each with the refusal people read."""
from __future__ import annotations

from typing import Callable, Iterable

from .errors import NotAllowed

SYSTEM = "system"  # the bot itself, acting on a schedule or on the settings (never a chat user id)


class Authority:
    def __init__(self, is_admin: Callable[[str], bool]):
        self.is_admin = is_admin

    def allows(self, by: str, holders: Iterable[str | None] = ()) -> bool:
        """`by` is one of `holders`, the bot itself, or a bot admin."""
        return by == SYSTEM or by in {h for h in holders if h} or self.is_admin(by)

    def require(self, by: str, holders: Iterable[str | None], refusal: str) -> None:
        """Raise NotAllowed(refusal) unless `by` is one of `holders`, the bot itself, or a bot admin."""
        if not self.allows(by, holders):
            raise NotAllowed(refusal)

    def require_admin(self, by: str, refusal: str) -> None:
        if not self.is_admin(by):
            raise NotAllowed(refusal)
