"""What every chat command shares: who called, the reply, the usage lines, number patterns."""
from __future__ import annotations

import re
from dataclasses import dataclass

from .views import Outcome

NUMBER = re.compile(r"^#?(\d{1,9})$")
LEADING_NUMBER = re.compile(r"^\s*#?(\d{1,9})(?:\s+(.*))?$", re.DOTALL)

USAGE = {
    "declare": "incident declare <title> [--report] [--drill]",
    "list": "incident list [open|closed|all]",
    "show": "incident show <number>",
    "summary": "summary <text>",
    "impact": "impact <text>",
    "sev": "sev <severity>",
    "action": "action <text>",
    "action done": "action done <action number>",
    "actions": "actions",
    "note": "note <text>",
    "decision": "decision <text>",
    "role": "{role} <@user|me|none>",
    "timeline": "timeline",
    "close": "close",
    "reopen": "reopen",
    "archive": "archive",
    "handover": "handover <role> <@user> [note]",
    "accept": "accept [offer number]",
    "decline": "decline [offer number]",
    "roles": "roles",
    "checkin": "checkin [every <minutes>m|off]",
    "update": "update <text>",
    "updates": "updates",
    "notify": "notify #channel",
    "call": "call <url>",
    "invite": "invite <@user|@group> ...",
    "ask": "ask <text>",
    "escalate": "escalate [team]",
    "rca": "rca [ready|share|publish [--force]]",
}


@dataclass(frozen=True)
class Caller:
    """Who sent a command, and from which channel (None for a direct message)."""

    user: str
    channel: str | None = None


@dataclass(frozen=True)
class Reply:
    text: str
    outcome: Outcome | None = None
