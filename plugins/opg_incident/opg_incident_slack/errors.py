"""A Slack call that failed, in words fit for people; no slack_sdk here, so that the outbox worker (which the
Confluence adapter also runs on the Text console) does not bring in Slack's client."""
from __future__ import annotations

EXPLAIN = {
    "not_in_channel": "I am not in that channel; invite me with /invite",
    "channel_not_found": "I cannot see that channel",
    "is_archived": "that channel is archived",
    "missing_scope": "the Slack app lacks a permission (see slack-app-manifest.yml)",
    "ratelimited": "Slack is rate-limiting us; try again in a minute",
    "expired_trigger_id": "the form took too long to open; try again",
    "name_taken": "that channel name is taken",
    "invalid_auth": "the Slack token is not valid",
    "not_archived": "that channel is not archived",
    "user_not_found": "Slack knows no such person",
}

TRANSIENT = {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout",
             "team_added_to_org", "http_5xx", "network"}


class SlackError(Exception):
    """A Slack call failed; the message is fit to show to people (no tokens, no stack traces)."""

    def __init__(self, method: str, code: str, retry_after: float | None = None):
        self.method, self.code, self.retry_after = method, code, retry_after
        super().__init__(f"Slack refused {method}: {EXPLAIN.get(code, code)}")

    @property
    def transient(self) -> bool:
        """Worth trying again later (rate limits, Slack's own errors, the network)."""
        return self.code in TRANSIENT
