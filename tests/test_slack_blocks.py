"""Block Kit builders against Slack's limits, and comms channel names against Slack's naming rules."""
import datetime as dt
import json
import re

import pytest

from opg_incident_core import SettingsStore
from conftest import incident_view as incident
from opg_incident_slack import blocks
from opg_incident_slack.effects import channel_name


@pytest.fixture(scope="module")
def settings():
    return SettingsStore().current


def texts(block_list):
    for block in block_list:
        text = block.get("text")
        if isinstance(text, dict):
            yield block["type"], text


def test_headline_stays_within_slacks_limits_with_huge_text(settings):
    huge = incident(title="t" * 400, summary="s" * 10_000, impact="i" * 10_000)
    fallback, body = blocks.headline(huge, settings, "http://x/incidents/7")
    assert len(body) <= blocks.MAX_BLOCKS
    for kind, text in texts(body):
        assert len(text["text"]) <= (blocks.MAX_HEADER if kind == "header" else blocks.MAX_SECTION)
    assert any(blocks.TRUNCATED in t["text"] for _, t in texts(body))
    assert len(fallback) <= 3000


def test_user_text_on_the_headline_is_plain_text_and_never_pings(settings):
    sneaky = incident(title="<!channel> help", summary="<!here> and <@U999>", impact="@channel")
    _, body = blocks.headline(sneaky, settings, "http://x/incidents/7")
    for _, text in texts(body):
        if "<!" in text["text"] or "@channel" in text["text"] or "<@U999>" in text["text"]:
            assert text["type"] == "plain_text"
    mrkdwn = " ".join(t["text"] for _, t in texts(body) if t["type"] == "mrkdwn")
    assert "<@U0LEAD002>" in mrkdwn and "Major" in mrkdwn and "http://x/incidents/7" in mrkdwn


def test_the_headline_names_the_people_its_title_summary_and_impact_mention(settings):
    """Header and plain-text sections show a mentioned person by name (Slack does not resolve mentions in
    plain_text); the people section (mrkdwn) keeps live mentions."""
    names = {"U0BOB0002": "Bob B", "U0CAROL03": "Carol"}.get
    mentioned = incident(title="DB down, <@U0BOB0002> on it", summary="Seen by <@U0CAROL03>",
                         impact="<@U0BOB0002>'s team is blocked")
    _, body = blocks.headline(mentioned, settings, "http://x/incidents/7", names=names)
    header = next(t["text"] for kind, t in texts(body) if kind == "header")
    plain = [t["text"] for kind, t in texts(body) if kind == "section" and t["type"] == "plain_text"]
    assert header == "Incident 7: DB down, @Bob B on it"
    assert "Summary: Seen by @Carol" in plain and "Impact: @Bob B's team is blocked" in plain
    assert "U0BOB0002" not in header + " ".join(plain) and "U0CAROL03" not in " ".join(plain)
    mrkdwn = " ".join(t["text"] for _, t in texts(body) if t["type"] == "mrkdwn")
    assert "<@U0REPORT1>" in mrkdwn and "<@U0LEAD002>" in mrkdwn


def test_headline_buttons_while_open_and_none_when_closed(settings):
    _, body = blocks.headline(incident(), settings, "http://x")
    actions = [e["action_id"] for b in body if b["type"] == "actions" for e in b["elements"]]
    assert actions == [blocks.CREATE_CHANNEL, blocks.PAGE_ONCALL, blocks.EDIT, blocks.CLOSE]
    labels = " ".join(e["text"]["text"] for b in body if b["type"] == "actions" for e in b["elements"])
    for word in ("comms channel", "Page", "Edit", "Close"):
        assert word in labels
    close = next(e for b in body if b["type"] == "actions" for e in b["elements"] if e["action_id"] == blocks.CLOSE)
    assert "confirm" not in close  # it opens the pre-close check (close_modal), which is the confirmation
    _, with_channel = blocks.headline(incident(channel_id="C9"), settings, "http://x")
    assert blocks.CREATE_CHANNEL not in str(with_channel) and "<#C9>" in str(with_channel)
    _, closed = blocks.headline(incident(status="closed", close_reason="blocked until 2024-03-12"), settings,
                                "http://x")
    assert not [b for b in closed if b["type"] == "actions"]
    assert "This incident is closed (blocked until 2024-03-12)" in str(closed)


def test_the_close_form_lists_what_is_missing_and_offers_the_two_reasons():
    view = blocks.close_modal(3, "DB down <!channel>", ["a summary", "1 open action (2)"], '{"number": 3}')
    text = str(view["blocks"])
    assert view["callback_id"] == blocks.CLOSE_VIEW and "• a summary" in text and "• 1 open action (2)" in text
    reason = next(b for b in view["blocks"] if b["block_id"] == "reason")["element"]
    assert [o["value"] for o in reason["options"]] == ["resolved", "blocked"]
    assert next(b for b in view["blocks"] if b["block_id"] == "until")["element"]["type"] == "datepicker"
    assert "Nothing is missing" in str(blocks.close_modal(3, "DB down", [], "{}")["blocks"])
    state = {"values": {"reason": {"value": {"type": "radio_buttons", "selected_option": {"value": "blocked"}}},
                        "until": {"value": {"type": "datepicker", "selected_date": "2024-03-12"}}}}
    values = blocks.modal_values({"state": state})
    assert (values["reason"], values["until"]) == ("blocked", "2024-03-12")


def test_modal_labels_and_prefill(settings):
    view = blocks.incident_modal(settings, title="DB down <!channel>", metadata='{"channel": "C1"}')
    # The process's criteria come first (is it an incident?), then the fields.
    criteria, *inputs = view["blocks"]
    assert criteria["block_id"] == "criteria" and "Is it an incident?" in criteria["text"]["text"]
    assert "requires an immediate response" in criteria["text"]["text"] and "data may be lost" in criteria["text"]["text"]
    labels = [b["label"]["text"] for b in inputs]
    for word, label in zip(("Title", "live", "Summary", "Impact", "Lead", "Severity", "Drill"), labels, strict=True):
        assert word in label
    assert inputs[0]["element"]["initial_value"] == "DB down <!channel>"
    assert view["callback_id"] == blocks.DECLARE_VIEW and view["private_metadata"] == '{"channel": "C1"}'
    options = inputs[5]["element"]["options"]
    assert [o["value"] for o in options] == [s.key for s in settings.severities]
    # Each severity carries its description from the YAML.
    assert [o["description"]["text"] for o in options] == [s.description for s in settings.severities]
    edit = blocks.incident_modal(settings, incident=incident(summary="so far"), metadata="{}")
    assert edit["callback_id"] == blocks.EDIT_VIEW
    edit_blocks = {b["block_id"]: b for b in edit["blocks"]}
    assert "live" not in edit_blocks and "drill" not in edit_blocks  # decided when declaring
    assert edit_blocks["summary"]["element"]["initial_value"] == "so far"
    assert edit_blocks["lead"]["element"]["initial_user"] == "U0LEAD002"
    assert edit_blocks["severity"]["element"]["initial_option"]["value"] == "major"


def test_a_long_slash_text_is_cut_into_title_and_summary(settings):
    text = "Payments fail " + "and more detail " * 40
    view = blocks.incident_modal(settings, title=text)
    fields = {b["block_id"]: b for b in view["blocks"]}
    title = fields["title"]["element"]["initial_value"]
    summary = fields["summary"]["element"]["initial_value"]
    assert len(title) <= 300 and title.startswith("Payments fail")
    assert " ".join((title + " " + summary).split()) == " ".join(text.split())


def test_modal_values_reads_each_field_type():
    state = {"values": {
        "title": {"value": {"type": "plain_text_input", "value": "DB down"}},
        "live": {"value": {"type": "radio_buttons", "selected_option": {"value": "report"}}},
        "summary": {"value": {"type": "plain_text_input", "value": None}},
        "lead": {"value": {"type": "users_select", "selected_user": "U5"}},
        "severity": {"value": {"type": "static_select", "selected_option": None}},
        "drill": {"value": {"type": "checkboxes", "selected_options": [{"value": "drill"}]}},
    }}
    assert blocks.modal_values({"state": state}) == {"title": "DB down", "live": "report", "summary": None,
                                                     "impact": None, "lead": "U5", "severity": None,
                                                     "drill": "drill", "reason": None, "until": None}


@pytest.mark.parametrize("title", ["Payments are FAILING!!! since 10:31", "ünïcödé 🔥 only", "x" * 200, "---"])
def test_channel_names_follow_slacks_rules(title):
    name = channel_name("inc-{number}-{slug}", incident(title=title))
    assert re.fullmatch(r"[a-z0-9_-]{1,80}", name)
    assert name.startswith("inc-7")
    second = channel_name("inc-{number}-{slug}", incident(title=title), attempt=1)
    assert second != name and len(second) <= 80 and second.endswith("-2")


def test_escalation_menu_has_a_page_button_per_team_that_can_be_reached(settings):
    teams = [t.model_copy(update={"slack_group": "S0TEAM001"}) for t in settings.specialists]
    teams.append(settings.specialists[0].model_copy(update={"key": "dba", "name": "Database admins"}))
    text, body = blocks.escalation_menu(4, teams)
    buttons = [e for b in body if b["type"] == "actions" for e in b["elements"]]
    assert [b["value"] for b in buttons] == [f"4:{t.key}" for t in settings.specialists]  # not dba
    assert all(b["action_id"] == blocks.PAGE_TEAM and b["text"]["text"].startswith("Page ") for b in buttons)
    assert "webops" in text and len(body) <= blocks.MAX_BLOCKS
    assert "Not set up to be paged: Database admins" in json.dumps(body)
    _, none = blocks.escalation_menu(4, settings.specialists)  # the shipped teams: nothing set up
    assert [b["type"] for b in none] == ["section"]


def test_headline_shows_pending_handovers(settings):
    from types import SimpleNamespace
    offer = SimpleNamespace(role="lead", to_user="U0NEWLEAD1", awaiting="U0NEWLEAD1")
    _, body = blocks.headline(incident(), settings, "http://x", [offer])
    assert "Incident Lead offered to <@U0NEWLEAD1>, waiting for <@U0NEWLEAD1>" in str(body)
    _, without = blocks.headline(incident(), settings, "http://x")
    assert "offered to" not in str(without)


def test_every_message_and_modal_passes_slacks_block_kit_checks(settings):
    """The fake Slack's Block Kit rules (plain_text where required, unique action_ids, lengths, ...)."""
    from fake_slack.blocks import check_message_blocks, check_view

    huge = incident(title="t" * 400, summary="s" * 10_000, impact="i" * 10_000, channel_id="C0INC0001")
    for built in (blocks.headline(incident(), settings, "http://x")[1],
                  blocks.headline(huge, settings, "http://x")[1],
                  blocks.headline(incident(status="closed", closed_at=dt.datetime(2026, 11, 27, 12, 0)), settings,
                                  "http://x")[1],
                  blocks.escalation_menu(4, settings.specialists)[1], blocks.handover("Take it?", 3),
                  blocks.reminder("No scribe yet", 4, "scribe", "Incident Scribe"), blocks.text_message("hi")):
        assert check_message_blocks(built) == built
    for view in (blocks.incident_modal(settings, title="x" * 500),
                 blocks.incident_modal(settings, incident=huge, metadata='{"number": 7}')):
        assert check_view(view) == view
