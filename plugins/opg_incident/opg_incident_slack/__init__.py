"""opg-incident's Slack adapter: Web API gateway, Block Kit, interactions and their effects.

The names below are imported when first used (PEP 562), so that `opg_incident_slack.replies` alone does not
bring in the whole adapter (slack_sdk's models, requests) on the Text console, where Slack is never used."""
import importlib

_LAZY = {"Effects": ".effects", "SlackError": ".gateway", "SlackGateway": ".gateway",
         "SlackInteractions": ".interactions"}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
