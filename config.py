"""errbot settings for opg-incident, from environment variables (all optional).

Without SLACK_BOT_TOKEN the bot starts on errbot's Text console with SQLite in BOT_DATA_DIR.
"""
import gc
import logging
import os
import sys
import threading
from pathlib import Path

# Start-up (errbot, Slack's client, the plugin) makes ~150,000 long-lived objects and almost no garbage
# (~2,000 objects in cycles): the cyclic garbage collector, walking them ~240 times while they are made, was
# 60-120 ms of every start (issue 17, P5). It is off until the plugin has started, which then freezes what
# start-up made and switches it back on (opg_incident.py); if the plugin never starts, on after 2 minutes.
gc.disable()
_gc_back_on = threading.Timer(120, gc.enable)
_gc_back_on.daemon = True
_gc_back_on.start()

ROOT = Path(__file__).resolve().parent
env = os.environ.get

SLACK_BOT_TOKEN = env("SLACK_BOT_TOKEN", "")
SLACK_APP_TOKEN = env("SLACK_APP_TOKEN", "")
SLACK_SIGNING_SECRET = env("SLACK_SIGNING_SECRET", "")
SLACK_API_URL = env("SLACK_API_URL", "https://slack.com/api/")
# Optional: a person's user token (xoxp-, user scope channels:write) for the one thing Slack lets no bot do:
# unarchive a comms channel when its incident is reopened. Without it the lead is told how to unarchive it.
SLACK_USER_TOKEN = env("SLACK_USER_TOKEN", "")

BOT_DATA_DIR = str(Path(env("BOT_DATA_DIR", str(ROOT / "data"))).resolve())
Path(BOT_DATA_DIR).mkdir(parents=True, exist_ok=True)
BOT_EXTRA_PLUGIN_DIR = str(ROOT / "plugins")
BOT_EXTRA_BACKEND_DIR = str(ROOT / "backends")
AUTOINSTALL_DEPS = False

if SLACK_BOT_TOKEN:
    BACKEND = "OPGSlack"
    BOT_IDENTITY = {"token": SLACK_BOT_TOKEN, "base_url": SLACK_API_URL}
    if SLACK_APP_TOKEN:
        BOT_IDENTITY["app_token"] = SLACK_APP_TOKEN
    if SLACK_SIGNING_SECRET:
        BOT_IDENTITY["signing_secret"] = SLACK_SIGNING_SECRET
    default_admins = ""
else:
    BACKEND = "Text"
    BOT_IDENTITY = {}
    default_admins = "@you"

BOT_ADMINS = tuple(a.strip() for a in env("BOT_ADMINS", default_admins).split(",") if a.strip())
BOT_ADMINS_NOTIFICATIONS = tuple(f"<@{a}>" if SLACK_BOT_TOKEN else a for a in BOT_ADMINS)

# No ChatRoom (anyone could create or destroy channels), no VersionChecker (calls the internet),
# no Help (our `help` explains the process), no Webserver (it serves /echo on the living document's origin:
# the plugin runs its own web server).
CORE_PLUGINS = ("ACLs", "Health", "Plugins", "Utils", "TextCmds", "Backup")
# errbot's own commands that echo text or show internals (`echo` would post a raw <!channel>; `status`,
# `plugin ...`, `backup`): bot admins only (nobody when there are none). TextCmds only exist on the console.
_ADMINS_ONLY = {"allowusers": BOT_ADMINS or ("nobody",)}
ACCESS_CONTROLS = {f"{plugin}:*": _ADMINS_ONLY for plugin in ("Utils", "Health", "Plugins", "Backup")}
BOT_PREFIX = "!"
BOT_PREFIX_OPTIONAL_ON_CHAT = True
# Mentioning the bot makes a command (`@opg-incident summary ...`): the Slack backend turns this into
# the bot's own <@U...> mention, whatever its name in the workspace.
BOT_ALT_PREFIXES = ("@opg-incident",)
BOT_ALT_PREFIX_CASEINSENSITIVE = True
SUPPRESS_CMD_NOT_FOUND = True
HIDE_RESTRICTED_COMMANDS = True

BOT_LOG_FILE = env("BOT_LOG_FILE", str(Path(BOT_DATA_DIR) / "errbot.log"))
BOT_LOG_LEVEL = getattr(logging, env("BOT_LOG_LEVEL", "INFO").upper(), logging.INFO)
# Logs: errbot's command line loses what people typed at INFO; INCIDENT_LOG_FORMAT=json writes JSON lines
# to the log file and standard output (errbot's own file handler, plain text, is then not added, so
# errbot's `log tail` command has no file to show).
sys.path.insert(0, str(ROOT / "plugins" / "opg_incident"))
import opg_incident_logs  # noqa: E402

opg_incident_logs.quiet_commands()
# Every SQL statement (Peewee's DEBUG lines, parameters included: what people wrote) only when asked for:
# at BOT_LOG_LEVEL=DEBUG they would be most of the log, and writing them slows a busy bot.
logging.getLogger("peewee").setLevel(logging.DEBUG if env("INCIDENT_LOG_SQL", "").lower() in ("1", "true", "yes")
                                     else logging.INFO)
INCIDENT_LOG_FORMAT = env("INCIDENT_LOG_FORMAT", "text").strip().lower()
if INCIDENT_LOG_FORMAT == "json":
    BOT_LOG_FORMATTER = opg_incident_logs.use_json(BOT_LOG_FILE)
    BOT_LOG_FILE = ""
STORAGE = "Shelf"

# opg-incident's own settings (read by the plugin through its bot_config)
INCIDENT_DATABASE_URL = env("INCIDENT_DATABASE_URL", "")
INCIDENT_SETTINGS = env("INCIDENT_SETTINGS", "")
INCIDENT_ONCALL = env("INCIDENT_ONCALL", "")
# PagerDuty's Events API v2 endpoint (the EU service region: https://events.eu.pagerduty.com/v2/enqueue).
INCIDENT_PAGERDUTY_URL = env("INCIDENT_PAGERDUTY_URL", "https://events.pagerduty.com/v2/enqueue")
INCIDENT_WEB_PORT = int(env("INCIDENT_WEB_PORT", "3141"))
INCIDENT_WEB_HOST = env("INCIDENT_WEB_HOST", "127.0.0.1")
# How often reminders, check-ins and handover expiry are checked; how long a reminder "minute" is
# (shortened only by end-to-end tests).
INCIDENT_POLL_SECONDS = int(env("INCIDENT_POLL_SECONDS", "60"))
INCIDENT_MINUTE_SECONDS = float(env("INCIDENT_MINUTE_SECONDS", "60"))
# How long a process may hold an outbox item before another one (after a crash) may send it.
INCIDENT_OUTBOX_LEASE_SECONDS = float(env("INCIDENT_OUTBOX_LEASE_SECONDS", "30"))
# /readyz says "not ready" once an outbox item has been due and unsent for this long (docs/operations.md).
INCIDENT_READY_OUTBOX_SECONDS = float(env("INCIDENT_READY_OUTBOX_SECONDS", "600"))
INCIDENT_PUBLIC_URL = env("INCIDENT_PUBLIC_URL", f"http://localhost:{INCIDENT_WEB_PORT}").rstrip("/")
# Living document access (docs/living-document.md): a shared token, or a header set by an
# authenticating reverse proxy such as oauth2-proxy (X-Forwarded-Email). Neither: open to whoever reaches it.
INCIDENT_WEB_TOKEN = env("INCIDENT_WEB_TOKEN", "")
INCIDENT_WEB_TRUSTED_HEADER = env("INCIDENT_WEB_TRUSTED_HEADER", "")
# Confluence, for `rca publish` (README: Publishing to Confluence). Cloud: https://<site>.atlassian.net/wiki, the
# account's e-mail and an API token; Data Center: the site's address and a personal access token (no user).
CONFLUENCE_URL = env("CONFLUENCE_URL", "")
CONFLUENCE_USER = env("CONFLUENCE_USER", "")
CONFLUENCE_TOKEN = env("CONFLUENCE_TOKEN", "")
CONFLUENCE_SPACE = env("CONFLUENCE_SPACE", "")  # overrides confluence.space in the settings

# A start that cannot work stops here, before errbot connects to Slack (where it would stay, ignoring
# everyone, after the plugin failed to start): one line on standard error, exit status 2. The plugin
# also exits (status 3) when its first start fails for another reason.
INCIDENT_EXIT_ON_FAILED_START = True


def _preflight() -> None:
    from opg_incident_core import SettingsError, load_settings
    from opg_incident_core.connection import UNAVAILABLE, check_database

    try:
        load_settings(INCIDENT_SETTINGS or None)
        check_database(INCIDENT_DATABASE_URL or None, BOT_DATA_DIR)
    except (SettingsError, *UNAVAILABLE) as exc:
        line = " | ".join(part.strip() for part in str(exc).splitlines() if part.strip())
        sys.stderr.write(f"opg-incident cannot start: {line}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


_preflight()
