"""opg-incident's domain core: incidents, roles, timeline, actions and settings.

It imports neither errbot, nor slack_sdk, nor Flask: adapters call it and announce what it returns.
"""
import warnings

# `python -m opg_incident_core.settings check FILE` runs a module this package has imported already;
# runpy's warning about it does not apply (the module's main() only reads files).
warnings.filterwarnings("ignore", message=r"'opg_incident_core\.settings' found in sys\.modules",
                        category=RuntimeWarning)

from .errors import IncidentError, InvalidInput, NotAllowed, NotFound, SettingsError
from .service import IncidentService
from .settings import Settings, SettingsStore, load_settings, parse_settings
from .storage import open_database
from .views import ActionView, Happened, IncidentView, Outcome, TimelineView

__all__ = [
    "IncidentError", "InvalidInput", "NotAllowed", "NotFound", "SettingsError", "IncidentService",
    "Settings", "SettingsStore", "load_settings", "parse_settings", "open_database", "ActionView",
    "Happened", "IncidentView", "Outcome", "TimelineView",
]
