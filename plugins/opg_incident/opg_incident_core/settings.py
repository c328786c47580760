"""Settings from YAML: roles, severities, channels, reminders, paging, validated into immutable objects.

Errors name the file, the line and the field, and say what is allowed.
"""
from __future__ import annotations

import re
import sys
import threading
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import SettingsError
from .text import GROUP_ID, USER_ID

DEFAULT_SETTINGS_PATH = Path(__file__).resolve().parent.parent / "settings.yml"
KEY = r"^[a-z][a-z0-9_-]{0,30}$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
        every_minutes=5, text="👩‍🚒 Incident {number} has no {role}. Take it with `{bot} {key} me`.")
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
        except (ZoneInfoNotFoundError, ValueError):
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


# -- loading ----------------------------------------------------------------------------------------

def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the YAML file; raise SettingsError naming file, line and field."""
    path = Path(path) if path else DEFAULT_SETTINGS_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file ({exc.strerror or exc})") from None
    return parse_settings(text, str(path))


def parse_settings(text: str, source: str = "<settings>") -> Settings:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SettingsError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{source}:1: the settings must be a mapping (roles:, severities:, ...)")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = tuple(err["loc"])
        message = err["msg"]
        ctx_error = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_error, _AtPath):
            path, message = path + ctx_error.path, str(ctx_error)
        elif message.startswith("Value error, "):
            message = message[len("Value error, "):]
        pattern = (err.get("ctx") or {}).get("pattern")
        if pattern in PATTERN_HELP:
            message = f"{err.get('input')!r} is not {PATTERN_HELP[pattern]}"
        if err["type"] == "extra_forbidden":
            message = "unknown field" + _allowed_fields(path)
        line = _line_of(node, path)
        more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
        raise SettingsError(f"{source}:{line}: {_dotted(path)}: {message}{more}") from None


def _allowed_fields(path: tuple) -> str:
    model: type[BaseModel] = Settings
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return ""
        model = inner
    return "; allowed: " + ", ".join(model.model_fields)


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _line_of(node, path: tuple) -> int:
    """The 1-based line of the deepest YAML node on `path`."""
    line = node.start_mark.line + 1 if node is not None else 1
    for part in path:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if key_node.value == part:
                    line, child = key_node.start_mark.line + 1, value_node
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line


class SettingsStore:
    """The live settings, swapped atomically on reload; an invalid file leaves them untouched."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else DEFAULT_SETTINGS_PATH
        self._lock = threading.Lock()
        self._current = load_settings(self.path)

    @property
    def current(self) -> Settings:
        return self._current

    def reload(self) -> list[str]:
        """Re-read the file; return what changed. Raises SettingsError and keeps the old settings."""
        with self._lock:
            new = load_settings(self.path)
            changes = describe_changes(self._current, new)
            self._current = new
            return changes

    def reload_or_keep(self) -> SettingsError | None:
        """Re-read the file, or keep the last good settings when it is not valid: None, or why they stay.
        For errbot's `plugin reload`, which must never leave the bot without its incident plugin."""
        try:
            self.reload()
        except SettingsError as exc:
            return exc
        return None


def describe_changes(old: Settings, new: Settings) -> list[str]:
    changes: list[str] = []
    for name, (old_items, new_items) in {
        "role": (old.roles, new.roles),
        "severity": (old.severities, new.severities),
    }.items():
        before = {i.key: i for i in old_items}
        after = {i.key: i for i in new_items}
        changes += [f"added {name} {after[k].name} ({k})" for k in after if k not in before]
        changes += [f"removed {name} {before[k].name} ({k})" for k in before if k not in after]
        changes += [f"changed {name} {after[k].name} ({k})" for k in after if k in before and after[k] != before[k]]
    for field in Settings.model_fields:
        if field not in ("roles", "severities") and getattr(old, field) != getattr(new, field):
            changes.append(f"changed {field}")
    return changes


if __name__ == "__main__":  # python -m opg_incident_core.settings check [FILE ...]
    from opg_incident_core.settings_check import main

    sys.exit(main(sys.argv[1:]))
