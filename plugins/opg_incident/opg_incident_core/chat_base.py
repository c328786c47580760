"""What every chat command shares: who called, the reply, the usage lines, number patterns."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .commands import REGISTRY
from .views import Outcome

NUMBER = re.compile(r"^#?(\d{1,9})$")
LEADING_NUMBER = re.compile(r"^\s*#?(\d{1,9})(?:\s+(.*))?$", re.DOTALL)

class _Usage:
    """The usage line of a command, from the registry (`USAGE["summary"]`); "role" is the shape of every
    role command, "declare", "list" and "show" the `incident ...` ones."""

    _SHORT = {"declare": "incident declare", "list": "incident list", "show": "incident show"}

    def __getitem__(self, name: str) -> str:
        if name == "role":
            return "{role} <@user|me|none>"
        return REGISTRY.usage(self._SHORT.get(name, name))


USAGE = _Usage()


@dataclass(frozen=True)
class Caller:
    """Who sent a command, and from which channel (None for a direct message)."""

    user: str
    channel: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    outcome: Outcome | None = None
    menu: int | None = None  # the incident whose specialist teams an adapter may offer as buttons instead
