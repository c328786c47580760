"""A fake Slack for end-to-end tests: Web API, Socket Mode and signed HTTP delivery on loopback.

    from tests.fake_slack import FakeSlack

    with FakeSlack() as fake:                       # or FakeSlack(mode="http", app_url=...)
        fake.add_user("U0ALICE001", "alice")
        general = fake.add_channel("general", members=["U0ALICE001"])
        env = dict(fake.bot_env(), BOT_DATA_DIR=tmp, INCIDENT_WEB_PORT=str(port))
        bot = subprocess.Popen(["errbot", "-c", "config.py"], env=env)
        fake.wait_until_connected(timeout=60)
        fake.post_message(general, "U0ALICE001", f"<@{fake.bot_user_id}> help")
        reply = fake.wait_for_message(general)

See fake.py for the API and tests/test_fake_slack.py for checks against the real slack_sdk clients.
Slack's rules the fake enforces (each with a test in tests/test_fake_slack_rules*.py): the Web API
contract of methods.json (spec.py), the manifest's scopes and events (manifest.py, access.py), Block Kit
(blocks.py), rate limits (ratelimits.py), ack deadlines (delivery.py). ledger.py lists every Slack error
the app received; pytest_plugin.py fails an end-to-end test on one it did not inject or expect.
"""
from .delivery import Ack, AckTimeout, Delivery
from .fake import ALL_SCOPES, ALL_SUBSCRIPTIONS, RELAXABLE, FakeSlack
from .manifest import Manifest
from .http_mode import sign
from .workspace import SlackError

__all__ = ["Ack", "AckTimeout", "ALL_SCOPES", "ALL_SUBSCRIPTIONS", "Delivery", "FakeSlack", "Manifest",
           "RELAXABLE", "SlackError", "sign"]
