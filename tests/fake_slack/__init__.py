"""A fake Slack for end-to-end tests: Web API, Socket Mode and signed HTTP delivery on loopback.

See fake.py for `FakeSlack` and tests/test_fake_slack.py for usage with the real slack_sdk clients.
"""
from .delivery import Ack, AckTimeout, Delivery
from .fake import DEFAULT_SCOPES, DEFAULT_SUBSCRIPTIONS, FakeSlack
from .http_mode import sign
from .workspace import SlackError

__all__ = ["Ack", "AckTimeout", "Delivery", "DEFAULT_SCOPES", "DEFAULT_SUBSCRIPTIONS", "FakeSlack",
           "SlackError", "sign"]
