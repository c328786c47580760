"""`help`, generated from the command registry: the process in five steps, then every command grouped by
who uses it, and `help <command>` for one command."""
from __future__ import annotations

from .authority import RULES
from .commands import GROUPS, REGISTRY, describe
from .text import defuse

# The OPG process's test: is it an incident? (shown in help and in the declare form)
CRITERIA = ("it requires an immediate response to restore a service", "it severely degrades the user experience",
            "security may be compromised", "data may be lost")


def process_help(settings, bot_prefix: str = "", admins: bool = True) -> str:
    p = bot_prefix
    sevs = "|".join(s.name for s in settings.severities)
    roles = " / ".join(f"`{p}{r.key} <@user|me>` ({r.name})" for r in settings.assignable_roles)
    lines = [
        "*How an incident runs*" + (f" (the process: {settings.process_url})" if settings.process_url else ""),
        "Is it an incident? Declare one when " + "; or ".join(CRITERIA) + ".",
        f"1. Declare: `{p}incident declare <what happened>` (`--report` for something already over, "
        f"`--drill` for practice). The bot marks the official start in #{settings.channels.incidents}.",
        f"2. Roles: {roles}. Lead and Scribe must be filled, by different people.",
        f"3. Lead's updates: `{p}summary <text>`, `{p}impact <text>`, `{p}sev <{sevs}>`.",
        "Severities: " + "; ".join(f"{s.emoji} {s.name}".strip() + (f": {_bare(s.description)}" if s.description
                                                                     else "") for s in settings.severities) + ".",
        f"4. Scribe's log: pin important messages; `{p}action <text>`, `{p}note <text>`, `{p}decision <text>`, "
        f"`{p}action done <n>`, `{p}actions`, `{p}timeline`.",
        f"5. End: `{p}close` (the lead or a bot admin) says what is missing first (summary, impact, scribe, open "
        f"actions); `{p}close anyway` closes as resolved, `{p}close anyway blocked until <date>` as blocked. Then the "
        f"root-cause analysis: `{p}rca ready`, `{p}rca share`. `{p}reopen` if it comes back.",
        "In Slack, mention me in the incident's channel (`@opg-incident summary ...`), use `/opg-incident <command>`, "
        "or write to me directly.",
        f"In an incident channel the incident is implied; elsewhere put its number first: `{p}summary 12 <text>`.",
    ]
    if not admins:
        lines.append("No bot admins are set (BOT_ADMINS): nobody can take over a role whose holder is away, "
                     "or reload the settings.")
    lines.append("")
    lines.append(commands_help(bot_prefix, settings))
    return "\n".join(lines)


def commands_help(bot_prefix: str = "", settings=None) -> str:
    """Every command, grouped by who uses it."""
    p = bot_prefix
    overrides = getattr(settings, "permissions", {}) or {}
    lines = []
    for group, title in GROUPS.items():
        cmds = [c for c in REGISTRY if c.group == group and not c.hidden]
        if group == "admins":
            cmds += [c for c in REGISTRY if c.group != "admins" and tuple(overrides.get(c.name, c.may)) == ("admins",)]
        if not cmds:
            continue
        lines.append(f"{title}:")  # plain: errbot's Markdown joins an emphasised line to the one before
        lines.extend(f"• `{p}{c.usage}`: {c.help}" for c in cmds)
    lines.append(f"Say `{p}help <command>` for more about one command.")
    return "\n".join(lines)


def channel_commands(bot_prefix: str = "") -> str:
    """The key commands per role, for an incident channel's welcome: every command about an incident (those
    of the admins left out), grouped by who uses it, by name; `help` and `help <command>` for the rest."""
    lines = []
    for group, title in GROUPS.items():
        names = [f"`{bot_prefix}{c.name}`" for c in REGISTRY if c.group == group and c.incident and not c.hidden
                 and group != "admins"]
        if names:
            lines.append(f"• {title}: {', '.join(names)}")
    lines.append(f"Say `{bot_prefix}help` for what they do, `{bot_prefix}help <command>` for more about one.")
    return "\n".join(lines)


def command_help(name: str, bot_prefix: str = "", settings=None) -> str:
    """`help <command>`: usage, what it does, who may run it; a suggestion for a typo."""
    cmd = REGISTRY.get(name)
    if cmd is None:
        guess = REGISTRY.suggest(name.split()[0]) if name.split() else None
        return (f"I don't know `{defuse(name)}`." + (f" Did you mean `{guess}`?" if guess else "")
                + " `help` lists every command.")
    who = tuple((getattr(settings, "permissions", {}) or {}).get(cmd.name, cmd.may))
    also = f" Also: {', '.join(f'`{a}`' for a in cmd.aliases)}." if cmd.aliases else ""
    where = (" In an incident's channel the incident is implied; elsewhere put its number first."
             if cmd.incident else "")
    return f"`{bot_prefix}{cmd.usage}`: {cmd.help}{also}\nWho may: {who_may(cmd, who)}.{where}"


def who_may(cmd, who: tuple) -> str:
    """The real rule: the operation's own (authority.RULES) within who may run the command at all."""
    rule = RULES.get(cmd.name)
    if rule is None:
        return describe(who)
    text = rule.format(who=describe(who))
    if who != cmd.may and "{who}" not in rule:  # the settings' permissions narrow it further
        text += f" (and, by the settings, only {describe(who)} may run it)"
    return text


def _bare(text: str) -> str:
    """A sentence without its full stop, to be joined to others (no "all hands.;")."""
    return text.strip().rstrip(".")
