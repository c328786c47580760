"""Settings from YAML: roles, severities, channels, reminders, paging, validated into immutable objects.

Errors name the file, the line and the field, and say what is allowed.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .settings_model import Field, Model, field_validator, model_validator
from .text import GROUP_ID, USER_ID

DEFAULT_SETTINGS_PATH = Path(__file__).resolve().parent.parent / "settings.yml"
KEY = r"^[a-z][a-z0-9_-]{0,30}$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Frozen(Model):
    """Immutable; a field it does not declare is an error (settings_model.py)."""


class Role(_Frozen):
    key: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=60)
    description: str = Field(min_length=1)
    required: bool = False
    assignable: bool = True
    guidance: str = ""
    not_with: tuple[str, ...] = ()


class Severity(_Frozen):
    key: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=40)
    emoji: str = ""
    description: str = ""
    aliases: tuple[str, ...] = ()

    @field_validator("aliases", mode="before")
    @classmethod
    def _aliases_as_text(cls, value):
        # YAML reads `1` as a number; an alias is always text.
        return [str(a) for a in value] if isinstance(value, list) else value


class Channels(_Frozen):
    incidents: str = Field(default="opg-incidents", pattern=r"^[a-z0-9_-]{1,80}$")
    reports: str = Field(default="", pattern=r"^[a-z0-9_-]{0,80}$")
    comms_pattern: str = "inc-{number}-{slug}"

    @field_validator("comms_pattern")
    @classmethod
    def _known_placeholders(cls, value: str) -> str:
        unknown = set(re.findall(r"{([^}]*)}", value)) - {"number", "slug", "date"}
        if unknown:
            raise ValueError(f"unknown placeholder {{{sorted(unknown)[0]}}}; allowed: {{number}}, {{slug}}, {{date}}")
        if "{number}" not in value:
            raise ValueError("must contain {number} so that every incident gets its own channel")
        return value

    @property
    def reports_channel(self) -> str:
        return self.reports or self.incidents


SLACK_USER_ID = rf"^({USER_ID})?$"
SLACK_GROUP_ID = rf"^({GROUP_ID})?$"
PATTERN_HELP = {
    SLACK_USER_ID: "a Slack user ID such as U0123ABC (in Slack: the person's profile, ⋮, Copy member ID)",
    SLACK_GROUP_ID: "a Slack user group ID such as S0123ABC",
    KEY: "a key: lowercase letters, digits, - and _, starting with a letter, at most 31 characters",
    r"^[a-z0-9_-]{1,80}$": "a Slack channel name: lowercase letters, digits, - and _, at most 80 characters",
    r"^[a-z0-9_-]{0,80}$": "a Slack channel name (or empty): lowercase letters, digits, - and _, at most 80 "
                           "characters",
    r"^[a-z0-9][a-z0-9_-]{0,99}$": "a Confluence label: lowercase letters, digits, - and _, no spaces",
}
REMINDER_PLACEHOLDERS = {"bot": "@opg-incident", "number": 1, "role": "Incident Scribe", "key": "scribe",
                         "lead": "@lead", "minutes": 30}


class Reminder(_Frozen):
    every_minutes: int = Field(ge=1, le=7 * 24 * 60)
    max_count: int = Field(default=5, ge=0, le=1000)
    # Placeholders: {bot} (the bot's mention name), {number}, {role}, {key}, {lead}, {minutes}
    text: str = Field(default="", min_length=1)

    @field_validator("text")
    @classmethod
    def _formats(cls, value: str) -> str:
        try:
            value.format(**REMINDER_PLACEHOLDERS)
        except (KeyError, IndexError, ValueError) as exc:
            allowed = ", ".join("{" + k + "}" for k in REMINDER_PLACEHOLDERS)
            raise ValueError(f"cannot fill in this text ({type(exc).__name__}: {exc}); placeholders: {allowed}; "
                             "write {{ and }} for a literal brace") from None
        return value


class WorkingHours(_Frozen):
    start: str = Field(default="09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    end: str = Field(default="18:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = DAYS[:5]


class Reminders(_Frozen):
    role_missing: Reminder = Reminder(
        every_minutes=5, text="👩‍🚒 Incident {number} has no {role}. Its lead or reporter gives it with `{bot} {key} @person` (or takes it: `{key} me`).")
    severity_missing: Reminder = Reminder(
        every_minutes=5, text="🌤️ Incident {number} has no severity. Set one with `{bot} sev <severity>`.")
    update_stale: Reminder = Reminder(
        every_minutes=30, max_count=10,
        text="📝 {lead}, the summary and impact of incident {number} have not changed for {minutes} minutes. "
             "Still right? `{bot} summary <text>`, `{bot} impact <text>`.")
    close_prompt: Reminder = Reminder(
        every_minutes=1440,
        text="⏲️ {lead}, incident {number} has been running a long time. Can it be closed now? `{bot} close`")
    working_hours: WorkingHours = WorkingHours()
    handover_timeout_minutes: int = Field(default=30, ge=1, le=24 * 60)


class Paging(_Frozen):
    oncall_user: str = Field(default="", pattern=SLACK_USER_ID)  # a Slack user ID such as U0123ABC
    pagerduty_routing_key: str = ""
    # Drills page nobody: their pages go to the person who asked, and to PagerDuty only with this key.
    drill_routing_key: str = ""


class Archive(_Frozen):
    when: Literal["on_close", "after_delay", "manual"] = "manual"
    delay_minutes: int = Field(default=1440, ge=0)


RCA_TITLE_PLACEHOLDERS = {"number": 1, "title": "Payments are failing", "date": "2024-03-05"}


class Confluence(_Frozen):
    """Where `rca publish` puts the root-cause analysis (the URL, user and token come from the environment)."""

    space: str = Field(default="", pattern=r"^[^\s/]{0,255}$")  # a space key such as OPG; CONFLUENCE_SPACE overrides
    parent: str = Field(default="", max_length=255)  # the parent page: its id (digits) or its title in the space
    title_pattern: str = Field(default="Incident {number}: {title} — root cause analysis", min_length=1,
                               max_length=255)
    labels: tuple[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,99}$")], ...] = ("incident", "rca")

    @field_validator("title_pattern")
    @classmethod
    def _title_formats(cls, value: str) -> str:
        try:
            value.format(**RCA_TITLE_PLACEHOLDERS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"cannot fill in this title ({type(exc).__name__}: {exc}); placeholders: {{number}}, "
                             "{title}, {date}; write {{ and }} for a literal brace") from None
        if "{number}" not in value:
            raise ValueError("must contain {number} so that every incident gets its own page")
        return value


class Team(_Frozen):
    name: str = Field(min_length=1)
    members: tuple[Annotated[str, Field(pattern=SLACK_USER_ID)], ...] = ()


class Specialist(_Frozen):
    """A team that can be paged: by Slack DM to a person, a user-group mention, or PagerDuty."""

    key: str = Field(pattern=KEY)
    name: str = Field(min_length=1, max_length=60)
    covers: str = ""
    slack_user: str = Field(default="", pattern=SLACK_USER_ID)
    slack_group: str = Field(default="", pattern=SLACK_GROUP_ID)
    pagerduty_routing_key: str = ""

    @property
    def reachable(self) -> bool:
        """Something is set up to page the team."""
        return bool(self.slack_user or self.slack_group or self.pagerduty_routing_key)


class Stakeholders(_Frozen):
    # Channels told of every update, by severity key; "default" applies when no severity is set.
    channels: dict[str, tuple[str, ...]] = {}
    # Minutes between stakeholder updates, by severity key ("default" otherwise).
    update_every_minutes: dict[str, int] = {"default": 60}
    help_channels: tuple[str, ...] = ()
    share_channels: tuple[str, ...] = ()
    # The cloud provider's Technical Account Managers (e.g. a channel shared with them): `rca share` too.
    cloud_provider_channel: str = Field(default="", pattern=r"^[a-z0-9_-]{0,80}$")
    call_link_template: str = ""

    @property
    def share_targets(self) -> tuple[str, ...]:
        """Where `rca share` shares the analysis."""
        extra = (self.cloud_provider_channel,) if self.cloud_provider_channel else ()
        return tuple(dict.fromkeys(self.share_channels + extra))

    def channels_for(self, severity: str | None) -> tuple[str, ...]:
        return self.channels.get(severity or "default", self.channels.get("default", ()))

    def update_every(self, severity: str | None) -> int:
        return self.update_every_minutes.get(severity or "default", self.update_every_minutes.get("default", 60))


class Nudge(_Frozen):
    keywords: tuple[str, ...] = Field(min_length=1)
    text: str = Field(min_length=1)


class Settings(_Frozen):
    time_zone: str = "Europe/London"
    process_url: str = ""
    channels: Channels = Channels()
    roles: tuple[Role, ...] = Field(min_length=1)
    role_conflicts: Literal["warn", "refuse"] = "warn"
    severities: tuple[Severity, ...] = Field(min_length=1)
    reminders: Reminders = Reminders()
    paging: Paging = Paging()
    archive: Archive = Archive()
    confluence: Confluence = Confluence()
    nudges: tuple[Nudge, ...] = ()
    # Optional: who is in which team, so the bot can say when a proposed lead is in the reporter's team.
    teams: tuple[Team, ...] = ()
    stakeholders: Stakeholders = Stakeholders()
    specialists: tuple[Specialist, ...] = ()
    # Who may run which command, overriding the defaults (commands.py): command name -> a list of
    # role_holders, reporter, channel_members, admins, anyone.
    permissions: dict[str, tuple[Literal["role_holders", "reporter", "channel_members", "admins", "anyone"], ...]] = {}

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: `America` (a folder), a very long name
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/London or UTC") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "Settings":
        role_keys = [r.key for r in self.roles]
        _unique("roles", role_keys)
        for i, role in enumerate(self.roles):
            for other in role.not_with:
                if other not in role_keys:
                    raise _AtPath(("roles", i, "not_with"), f"unknown role {other!r}; known roles: {', '.join(role_keys)}")
        _unique("specialists", [t.key for t in self.specialists])
        sev_keys = {s.key for s in self.severities} | {"default"}
        for field in ("channels", "update_every_minutes"):
            for key in getattr(self.stakeholders, field):
                if key not in sev_keys:
                    raise _AtPath(("stakeholders", field), f"unknown severity {key!r}; use one of "
                                                           f"{', '.join(sorted(sev_keys))}")
        from .chat import REGISTRY  # the commands register themselves when chat is imported

        for name, who in self.permissions.items():
            if REGISTRY.get(name) is None:
                raise _AtPath(("permissions", name), f"unknown command {name!r}; commands: "
                                                    f"{', '.join(sorted(c.name for c in REGISTRY))}")
            if not who:
                raise _AtPath(("permissions", name), "say who may run it (e.g. [admins])")
        words: dict[str, str] = {}
        for i, sev in enumerate(self.severities):
            for word in (sev.key, sev.name, *sev.aliases):
                taken = words.setdefault(word.lower(), sev.key)
                if taken != sev.key:
                    raise _AtPath(("severities", i), f"{word!r} already names severity {taken!r}")
        return self

    # -- look-ups -------------------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def role(self, key: str) -> Role | None:
        return next((r for r in self.roles if r.key == key), None)

    @property
    def assignable_roles(self) -> tuple[Role, ...]:
        return tuple(r for r in self.roles if r.assignable)

    def specialist(self, key: str) -> Specialist | None:
        return next((t for t in self.specialists if t.key == (key or "").lower()), None)

    def team_of(self, user: str | None) -> Team | None:
        return next((t for t in self.teams if user in t.members), None)

    def severity(self, key: str | None) -> Severity | None:
        return next((s for s in self.severities if s.key == key), None)

    def parse_severity(self, text: str) -> Severity | None:
        """The severity named by `text` (key, name or alias, any case, whole text only), as people type it:
        `Critical.`, `<Critical>` (the process document's own syntax; Slack sends it as &lt;Critical&gt;),
        `: critical`."""
        wanted = " ".join(text.replace("&lt;", "<").replace("&gt;", ">").split()).lower()
        wanted = re.sub(r"^[\s:<\"'`*_]+|[\s.!,;:>\"'`*_]+$", "", wanted)
        for sev in self.severities:
            if wanted in {sev.key.lower(), sev.name.lower(), *(a.lower() for a in sev.aliases)}:
                return sev
        return None


class _AtPath(ValueError):
    """A consistency error that knows which field it is about."""

    def __init__(self, path: tuple, message: str):
        super().__init__(message)
        self.path = path


def _unique(field: str, keys: list[str]) -> None:
    seen = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise _AtPath((field, i, "key"), f"duplicate key {key!r}; each key must be unique")
        seen.add(key)


# Loading, reloading and describing changes live in settings_file.py (re-exported here).
from .settings_file import (  # noqa: E402,F401
    SettingsStore, describe_changes, load_settings, parse_settings,
)


if __name__ == "__main__":  # python -m opg_incident_core.settings check [FILE ...]
    from opg_incident_core.settings_check import main

    sys.exit(main(sys.argv[1:]))
