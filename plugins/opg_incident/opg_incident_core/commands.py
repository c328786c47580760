"""The one registry of chat commands, and the permission policy that reads it.

Each command is declared once, on its handler, with `@command(...)`: its name as typed, aliases, usage,
help text, who uses it (for `help`) and who may run it by default. From the registry come errbot's
commands, the usage texts, `help` and `help <command>`, the any-case routing, the `/opg-incident`
subcommands and the permission policy (`permissions:` in the settings overrides the defaults).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable

from .errors import NotAllowed
from .text import mention

# Who may run a command: the incident's role holders, its reporter, people in its channel, bot admins,
# or anyone at all.
WHO = ("role_holders", "reporter", "channel_members", "admins", "anyone")
RESPONDERS = ("role_holders", "reporter", "admins")
IN_CHANNEL = ("channel_members", "role_holders", "reporter", "admins")
ANYONE = ("anyone",)
ADMINS = ("admins",)
# Who uses a command, for `help`: the groups in the order help shows them.
GROUPS = {"anyone": "Anyone", "lead": "The Incident Lead", "scribe": "The Incident Scribe",
          "comms": "The Communications Lead", "admins": "Bot admins"}


@dataclass(frozen=True)
class Command:
    name: str                      # as typed, lower case: "summary", "action done", "incident declare"
    run: Callable                  # run(chat, args, caller) -> Reply
    usage: str
    help: str
    group: str = "anyone"
    may: tuple[str, ...] = ANYONE
    aliases: tuple[str, ...] = ()
    hidden: bool = False           # not in `help` (still runs)
    incident: bool = True          # about one incident (its number first outside its channel)

    @property
    def admin_only(self) -> bool:
        return self.may == ADMINS

    @property
    def method_name(self) -> str:
        return self.name.replace(" ", "_")


@dataclass
class Registry:
    commands: dict[str, Command] = field(default_factory=dict)

    def add(self, cmd: Command) -> Command:
        for name in (cmd.name, *cmd.aliases):
            if name in self.commands:
                raise ValueError(f"command {name!r} is registered twice")
            self.commands[name] = cmd
        return cmd

    def __iter__(self):
        seen = set()
        for cmd in self.commands.values():
            if cmd.name not in seen:
                seen.add(cmd.name)
                yield cmd

    def get(self, name: str) -> Command | None:
        return self.commands.get(" ".join(name.lower().split()))

    def usage(self, name: str) -> str:
        return self.commands[name].usage

    def find(self, text: str) -> tuple[Command | None, str]:
        """The command that `text` starts with (any case, the longest name first) and the rest; a colon right
        after the name is allowed, as people type (`sev: critical`)."""
        words = text.strip().split(None, 2)
        for size in (2, 1):
            if len(words) >= size:
                head = " ".join(words[:size])
                cmd = self.get(head) or (self.get(head[:-1]) if head.endswith(":") else None)
                if cmd is not None:
                    rest = text.strip().split(None, size)
                    return cmd, (rest[size] if len(rest) > size else "")
        return None, text

    def suggest(self, word: str) -> str | None:
        """The command a typo most likely meant (`sumary` → `summary`)."""
        names = [n for n in self.commands if " " not in n]
        close = difflib.get_close_matches(word.lower(), names, n=1, cutoff=0.75)
        return close[0] if close else None

    def pattern(self) -> str:
        """A regular expression matching any command name at the start of a message (any case)."""
        names = sorted(self.commands, key=len, reverse=True)
        return (r"^(" + "|".join(r"\s+".join(map(re.escape, n.split())) for n in names)
                + r")(?:(?:\s*:\s*|\s+)(.*))?$")  # `sev: critical` as well as `sev critical`


REGISTRY = Registry()


def command(name: str, *, usage: str, help: str, group: str = "anyone", may: Iterable[str] = ANYONE,
            aliases: Iterable[str] = (), hidden: bool = False, incident: bool = True, run: Callable | None = None):
    """Declare a chat command on its handler `(chat, args, caller) -> Reply`."""
    def register(fn):
        REGISTRY.add(Command(name=name, run=run or fn, usage=usage, help=help, group=group, may=tuple(may),
                             aliases=tuple(aliases), hidden=hidden, incident=incident))
        return fn
    return register


class Permissions:
    """Who may run which command on which incident: the registry's defaults, overridden per command by the
    settings' `permissions:` (a list of WHO words). Every "lead or admin may ..." check of the chat
    commands goes through `check`."""

    def __init__(self, overrides: Callable[[], dict], is_admin: Callable[[str], bool]):
        self._overrides = overrides
        self._is_admin = is_admin

    def allowed(self, cmd: Command) -> tuple[str, ...]:
        return tuple(self._overrides().get(cmd.name, cmd.may))

    def check(self, cmd: Command, user: str, inc=None, channel: str | None = None) -> None:
        """Raise NotAllowed, saying who may, unless `user` may run `cmd` (on incident `inc`, from `channel`)."""
        who = self.allowed(cmd)
        if "anyone" in who or ("admins" in who and self._is_admin(user)):
            return
        if inc is not None:
            if "role_holders" in who and user in inc.roles.values():
                return
            if "reporter" in who and inc.roles.get("reporter") == user:
                return
            if "channel_members" in who and channel is not None and channel == inc.channel_id:
                return
        where = f" of incident {inc.number}" if inc is not None else ""
        raise NotAllowed(f"`{cmd.name}`{where} is for {describe(who)}."
                         + (f" Its lead: {mention(inc.roles.get('lead'))}." if inc is not None else ""))


def describe(who: Iterable[str]) -> str:
    words = {"role_holders": "the incident's role holders", "reporter": "its reporter",
             "channel_members": "people in its channel", "admins": "bot admins", "anyone": "anyone"}
    parts = [words[w] for w in who if w in words]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
