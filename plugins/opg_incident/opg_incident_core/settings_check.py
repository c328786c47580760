"""`python -m opg_incident_core.settings check [FILE ...]`: check settings files before deploying them."""
from __future__ import annotations

import os
import sys

from .errors import SettingsError
from .settings import DEFAULT_SETTINGS_PATH, load_settings


def main(argv: list[str]) -> int:
    """`python -m opg_incident_core.settings check [FILE...]`: validate settings files before deploying them;
    the messages are those of `incident reload`. Exit status 0 when every file is valid, 1 if not."""
    if not argv or argv[0] != "check":
        print("usage: python -m opg_incident_core.settings check [FILE ...] (default: $INCIDENT_SETTINGS, else "
              "the shipped settings.yml)", file=sys.stderr)
        return 2
    status = 0
    for name in argv[1:] or [os.environ.get("INCIDENT_SETTINGS") or str(DEFAULT_SETTINGS_PATH)]:
        try:
            settings = load_settings(name)
        except SettingsError as exc:
            print(exc, file=sys.stderr)
            status = 1
        else:
            print(f"{name}: valid ({len(settings.roles)} roles, {len(settings.severities)} severities)")
    return status

