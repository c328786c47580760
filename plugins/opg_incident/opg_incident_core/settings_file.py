"""The settings file: read and validate the YAML (errors name the file, the line and the field), keep the
settings in force and swap them atomically on a reload (the old ones stay when the new file is invalid)."""
from __future__ import annotations

import threading
from pathlib import Path

import yaml

from .errors import SettingsError
from .settings import DEFAULT_SETTINGS_PATH, PATTERN_HELP, Settings, _AtPath
from .settings_model import Model, ValidationError

# -- loading ----------------------------------------------------------------------------------------

def load_settings(path: str | Path | None = None) -> Settings:
    """Read and validate the YAML file; raise SettingsError naming file, line and field."""
    path = Path(path) if path else DEFAULT_SETTINGS_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file ({exc.strerror or exc})") from None
    return parse_settings(text, str(path))


# libyaml's loader where PyYAML has it (its wheels do): the settings are read at every start.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# The last file's text and its settings: the start-up check in config.py and the plugin read the same file
# (the settings are frozen, so sharing them is safe).
_LAST: tuple[str, str, Settings] | None = None


def _compose(text: str):
    """One parse: the node tree (for the line of a field) and the data built from it."""
    loader = _LOADER(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def parse_settings(text: str, source: str = "<settings>") -> Settings:
    global _LAST
    last = _LAST
    if last is not None and last[0] == text and last[1] == source:
        return last[2]
    settings = _parse(text, source)
    _LAST = (text, source, settings)
    return settings


def _parse(text: str, source: str) -> Settings:
    try:
        node, data = _compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise SettingsError(f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except ValueError as exc:  # PyYAML's int() of a literal of over 4,300 digits
        raise SettingsError(f"{source}: not valid YAML: {exc}") from None
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
    model: type[Model] = Settings
    for part in path[:-1]:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        if not (isinstance(inner, type) and issubclass(inner, Model)):
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


