"""An event recorded in the inbox whose Socket Mode ack then fails (the socket dropped before the reconnect)
is handled all the same: Slack's redelivery finds it recorded (a duplicate: acked, not handled), so handling
it only on that redelivery would leave it undone until the replay takes it over minutes later."""
import sys
from pathlib import Path

from slack_sdk.errors import SlackClientNotConnectedError
from slack_sdk.socket_mode.request import SocketModeRequest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends" / "opg_slack"))
import opg_slack  # noqa: E402


class Inbox:
    """Records each key once: the second delivery of a key is a duplicate, as in the plugin's inbox."""

    def __init__(self):
        self.keys = set()

    def record(self, key, kind, payload):
        if key in self.keys:
            return opg_slack.DUPLICATE
        self.keys.add(key)
        return opg_slack.NEW


class DroppingClient:
    """slack_sdk's client whose socket is gone for the first ack, back for the next."""

    def __init__(self):
        self.failures, self.acked = 1, []

    def send_socket_mode_response(self, response):
        if self.failures:
            self.failures -= 1
            raise SlackClientNotConnectedError("Failed to send a message as the connection is no longer active")
        self.acked.append(response.envelope_id)


def backend():
    class Probe(opg_slack.OPGSlackBackend):
        plugin_manager = None  # errbot sets it in __init__, which this test skips

    bot = object.__new__(Probe)
    bot.register_inputs(Inbox())
    bot.bot_config = type("Config", (), {"BOT_PREFIX": "!"})()
    bot.bot_alt_prefixes = ()
    bot.handled = []
    bot._dispatch_event = lambda event_data, key: bot.handled.append(key)
    bot._event_workers = type("Inline", (), {"submit": staticmethod(lambda fn, *args: fn(*args))})()
    return bot


def test_an_event_whose_ack_fails_is_handled_once_and_its_redelivery_is_acked():
    bot, client = backend(), DroppingClient()
    req = SocketModeRequest(type="events_api", envelope_id="env-1",
                            payload={"event_id": "Ev1", "event": {"type": "pin_added", "channel_id": "C1"}})
    bot._sm_generic_event_handler(client, req)  # recorded, the ack fails: handled all the same
    assert bot.handled == ["Ev1"] and client.acked == []
    bot._sm_generic_event_handler(client, req)  # Slack's redelivery: acked, not handled again
    assert bot.handled == ["Ev1"] and client.acked == ["env-1"]
