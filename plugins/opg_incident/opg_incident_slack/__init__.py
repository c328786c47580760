"""opg-incident's Slack adapter: Web API gateway, Block Kit, interactions and their effects."""
from .effects import Effects
from .gateway import SlackError, SlackGateway
from .interactions import SlackInteractions

__all__ = ["Effects", "SlackError", "SlackGateway", "SlackInteractions"]
