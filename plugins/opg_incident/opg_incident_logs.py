"""opg-incident's logging: JSON lines (INCIDENT_LOG_FORMAT=json) and no people's message text at INFO.

Standard library only: config.py loads it before errbot sets logging up, so that every line, from the
first, is in the chosen format.

- `JsonFormatter`: one JSON object per line: time (UTC, ISO 8601), level, logger, message, and when
  known `incident` (the number) and `input` (the key of the Slack input being handled), then
  `exception` with the traceback.
- `about(number, input_key)`: lines logged inside name that incident and that input (the outbox worker
  wraps each item in it; command handling, Slack inputs and the schedule what they do);
  `extra={"incident": n}` / `extra={"input_key": key}` do the same for one line.
- `QuietCommands`: errbot logs every command with its parameters at INFO (`Processing command "summary"
  with parameters "<what someone typed>" from ...`); the filter keeps the command and who, not the text.
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import re
import sys

_incident: contextvars.ContextVar[int | None] = contextvars.ContextVar("opg_log_incident", default=None)
_input: contextvars.ContextVar[str | None] = contextvars.ContextVar("opg_log_input", default=None)
_COMMAND = re.compile(r'^Processing command "(.*?)" with parameters ".*" from (.*)$', re.DOTALL)


@contextlib.contextmanager
def about(number: int | None = None, input_key: str | None = None):
    """Name the incident (when known) and the input (when given) on the lines logged inside; an enclosing
    `about` still names what this one does not."""
    tokens = (_incident.set(number if number is not None else _incident.get()),
              _input.set(input_key or _input.get()))
    try:
        yield
    finally:
        _incident.reset(tokens[0])
        _input.reset(tokens[1])


def _named(record: logging.LogRecord | None = None) -> tuple[int | None, str | None]:
    """The incident and the input a line is about (the record's own, then the context's)."""
    incident = getattr(record, "incident", None) or _incident.get()
    return incident, getattr(record, "input_key", None) or _input.get() or _current_input()


def _current_input() -> str | None:
    outbox = sys.modules.get("opg_incident_core.outbox")  # not imported here: no dependency on the core
    return outbox.current_input() if outbox is not None else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        incident, input_key = _named(record)
        if incident is not None:
            entry["incident"] = incident
        if input_key:
            entry["input"] = input_key
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class QuietCommands(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING and isinstance(record.msg, str) and \
                record.msg.startswith("Processing command "):
            found = _COMMAND.match(record.getMessage())
            if found:
                record.msg, record.args = 'Processing command "%s" from %s', (found[1], found[2])
        return True


def quiet_commands() -> None:
    """Install QuietCommands on errbot's command logger (once)."""
    logger = logging.getLogger("errbot.core")
    if not any(isinstance(f, QuietCommands) for f in logger.filters):
        logger.addFilter(QuietCommands())


def use_json(log_file: str | None) -> JsonFormatter:
    """JSON lines to `log_file` (a handler on the root logger, added now) and to standard output (errbot's
    console handler, which errbot points at standard error, moved). Returns the formatter for errbot's
    BOT_LOG_FORMATTER, which errbot gives its console handler."""
    formatter = JsonFormatter()
    root = logging.getLogger()
    if log_file and not any(isinstance(h, logging.FileHandler) and isinstance(h.formatter, JsonFormatter)
                            for h in root.handlers):
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setFormatter(formatter)
        root.addHandler(handler)
    errbot_logs = sys.modules.get("errbot.logs")
    if errbot_logs is not None:
        errbot_logs.console_hdlr.setStream(sys.stdout)
    return formatter
