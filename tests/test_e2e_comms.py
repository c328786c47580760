"""End to end, issue 8 (keeping everyone informed): the real `errbot -c config.py` process with the
OPGSlack backend against the fake Slack. Stakeholder updates in the headline's thread and in the
stakeholder channels, who may post them, resolved / reopened notices, escalation to specialist teams,
invites, asking the help channels, the call link, drills declared from the modal, sharing the RCA.

Assertions look at the fake workspace (messages, members, topics, the headline) and at the record
(the living document's JSON).
"""
from __future__ import annotations


import pytest
import yaml

from fake_slack import FakeSlack
from slack_bot import ALICE, BOB, CAROL, PEOPLE, ROOT, SlackBot, seed
from opg_incident_slack import blocks
from slack_steps import text_of, mention, after, with_text, reacted, headline, declare

pytestmark = pytest.mark.e2e
SHIPPED_SETTINGS = ROOT / "plugins" / "opg_incident" / "settings.yml"
WEBOPS, SECURITY_GROUP = "U0WEBOPS5", "S0SECURITY"
HELP = ("opg-all-team-digital", "opg-webops-community", "opg-developers")
SHARE = ("opg-delivery", "opg-all-team-digital", "opg-leadership")  # the OPG process's targets, not #opg-all-staff
CLOUD = "aws-opg-tam"  # the cloud provider's Technical Account Managers: a channel shared with them


# -- set-up -----------------------------------------------------------------------------------------

def write_settings(tmp_path):
    """A temp copy of settings.yml with specialists that can be reached (a person, a user group) and one
    that cannot."""
    data = yaml.safe_load(SHIPPED_SETTINGS.read_text(encoding="utf-8"))
    data["specialists"] = [
        {"key": "webops", "name": "WebOps", "covers": "AWS, networking, deployments", "slack_user": WEBOPS},
        {"key": "security", "name": "Security", "covers": "suspected breaches, leaked secrets",
         "slack_group": SECURITY_GROUP},
        {"key": "dba", "name": "Database admins", "covers": "PostgreSQL"},
    ]
    data["stakeholders"]["cloud_provider_channel"] = CLOUD
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(params=["socket", "http"])
def slack(request, tmp_path):
    with FakeSlack(request.param) as fake:
        channels = seed(fake)
        fake.add_user(WEBOPS, "webops-oncall", real_name="WebOps on call")
        for name in dict.fromkeys(HELP + SHARE + (CLOUD,)):  # the bot is not in #opg-developers: it joins to post
            channels[name] = fake.add_channel(name, members=list(PEOPLE), bot_member=name != "opg-developers")
        channels["service-status"] = fake.add_channel("service-status", members=[BOB])
        with SlackBot(fake, tmp_path, env={"INCIDENT_SETTINGS": str(write_settings(tmp_path))}) as bot:
            yield fake, bot, channels
        assert not fake.internal_errors, fake.internal_errors


def comms_channel(fake, bot, channels, number=1, members=(BOB,)) -> str:
    """Create the comms channel with the headline's button; people in `members` join it."""
    assert fake.click_button(headline(fake, channels, number), blocks.CREATE_CHANNEL, ALICE).ok
    channel_id = fake.wait_for(lambda: (bot.incident(number)["channel"] or {}).get("id"))
    fake.wait_for_message(channel_id, lambda m: "This is the comms channel" in m.get("text", ""))
    for user in members:
        fake.join(channel_id, user)
    return channel_id


def incident_with_channel(fake, bot, channels, **values) -> str:
    declare(fake, channels, **values)
    fake.wait_for(lambda: bot.incident(1)["roles"].get("lead") == ALICE)
    return comms_channel(fake, bot, channels)


def timeline(bot, kind, number=1) -> list:
    return [e["text"] for e in bot.incident(number)["timeline"] if e["kind"] == kind]


# -- stakeholder updates, who may post them, the end and the reopening --------------------------------

def test_update_goes_to_the_headline_thread_and_the_stakeholder_channels_then_close_and_reopen(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    incidents, status = channels["opg-incidents"], channels["service-status"]
    thread = headline(fake, channels)["ts"]

    # `notify` a channel (the bot is a member; Slack sends a typed #channel as <#C..|name>): it gets every
    # update from now on. (The reply's wording: test_notify_reply_names_the_channel.)
    command = mention(fake, channel_id, ALICE, f"notify <#{status}|service-status>")
    reacted(fake, channel_id, command)
    reply = after(fake, channel_id, command, "will get the stakeholder updates of incident 1")
    assert reply["text"].startswith(f"Done: <#{status}"), reply["text"]  # the channel's link, not a heading
    assert timeline(bot, "notify") == [f"<#{status}> will get the stakeholder updates"]

    # Someone with no role in it: refused with a clear reply (by the permission policy), nothing posted.
    refused = mention(fake, channel_id, BOB, "update All fixed, go home")
    after(fake, channel_id, refused, f"`update` of incident 1 is for the incident's role holders, its reporter and "
                                     f"bot admins. Its lead: <@{ALICE}>")
    assert "white_check_mark" not in {r["name"] for r in fake.message(channel_id, refused["ts"]).get("reactions", [])}
    assert timeline(bot, "update") == []

    # The lead's update: in the headline's thread and in #service-status, recorded on the timeline.
    command = mention(fake, channel_id, ALICE, "update Rolled back release 42; card payments recovering")
    after(fake, channel_id, command, f"Update posted for incident 1 (and sent to <#{status}>)")
    for where, thread_ts in ((incidents, thread), (status, None)):
        update = fake.wait_for(lambda: next(iter(with_text(fake, where, "card payments recovering", thread_ts)),
                                            None), message=f"no update in {where}")
        text = text_of(update)
        for part in ("Update on incident 1: Payments are failing", "Status: Live", "Severity: Major",
                     "Next update within 60 minutes", f"{bot.url}/incidents/1"):
            assert part in text, (part, where)
    assert with_text(fake, incidents, "card payments recovering", thread)[0].get("thread_ts") == thread
    assert [t for t in timeline(bot, "update") if "Rolled back release 42" in t]
    assert not with_text(fake, status, "All fixed, go home")

    # Close: "resolved" with the final summary wherever the update went.
    command = mention(fake, channel_id, ALICE, "summary Card payments failed after release 42; rolled back")
    reacted(fake, channel_id, command)
    mention(fake, channel_id, ALICE, "close anyway")  # no impact or scribe: closed anyway, as resolved
    resolved = fake.wait_for_message(status, lambda m: "Incident 1 is resolved" in m.get("text", ""))
    assert "Final summary: Card payments failed after release 42; rolled back" in text_of(resolved)
    assert f"{bot.url}/incidents/1" in text_of(resolved)
    fake.wait_for(lambda: with_text(fake, incidents, "Incident 1 is resolved", thread))
    assert bot.incident(1)["status"] == "closed"

    # Reopen (by DM, with the number): said in the same places.
    fake.post_message(fake.dm_channel(ALICE), ALICE, "reopen 1")
    fake.wait_for_message(status, lambda m: "Incident 1 is open again" in m.get("text", ""))
    fake.wait_for(lambda: with_text(fake, incidents, "Incident 1 is open again", thread))
    fake.wait_for_message(channel_id, lambda m: "Incident 1 is open again" in m.get("text", ""))
    assert len(with_text(fake, status, "Incident 1 is resolved")) == 1


@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_the_comms_lead_and_the_lead_post_updates_and_the_comms_lead_sets_how_often(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    fake.join(channel_id, CAROL)
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, f"comms <@{CAROL}>"))
    fake.wait_for(lambda: bot.incident(1)["roles"].get("comms") == CAROL)
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, f"scribe <@{BOB}>"))

    # A channel name as plain text (not a <#C..> link): the reply must not start with "#" (a Markdown heading).
    command = mention(fake, channel_id, CAROL, "notify #service-status")
    reply = fake.wait_for_message(channel_id, lambda m: float(m["ts"]) > float(command["ts"]) and
                                  "stakeholder updates of incident 1" in m.get("text", "").lower())
    assert "#service-status will get the stakeholder updates of incident 1" in reply["text"], reply["text"]

    # How often: the comms lead's choice, not the lead's (nor the scribe's).
    refused = mention(fake, channel_id, ALICE, "updates every 15m")
    after(fake, channel_id, refused, f"Only the Communications Lead (<@{CAROL}>) or a bot admin may choose how often")
    chosen = mention(fake, channel_id, CAROL, "updates every 15m")
    after(fake, channel_id, chosen, "Stakeholder updates for incident 1 are due every 15 minutes.")
    refused = mention(fake, channel_id, BOB, "update from the scribe")
    after(fake, channel_id, refused, f"Only the Communications Lead (<@{CAROL}>), the Incident Lead (<@{ALICE}>) or "
                                     f"a bot admin may post the stakeholder updates of incident 1.")
    empty = mention(fake, channel_id, CAROL, "update")
    after(fake, channel_id, empty, "Say what the update is")
    posted = mention(fake, channel_id, CAROL, "update from the comms lead")
    after(fake, channel_id, posted, "Update posted for incident 1")
    thread = headline(fake, channels)["ts"]
    update = fake.wait_for(lambda: next(iter(with_text(fake, channels["service-status"], "from the comms lead")), None))
    assert "Next update within 15 minutes" in text_of(update)
    # The lead may post one too, recorded as the lead's; with reminders off, no "next update" is promised.
    reacted(fake, channel_id, mention(fake, channel_id, CAROL, "updates off"))
    posted = mention(fake, channel_id, ALICE, "update from the lead")
    after(fake, channel_id, posted, "Update posted for incident 1")
    update = fake.wait_for(lambda: next(iter(with_text(fake, channels["service-status"], "from the lead")), None))
    assert "Next update" not in text_of(update)
    fake.wait_for(lambda: with_text(fake, channels["opg-incidents"], "from the lead", thread))
    assert not with_text(fake, channels["service-status"], "from the scribe")
    assert [(e["text"], e["author"]) for e in bot.incident(1)["timeline"] if e["kind"] == "update"] == [
        ("Stakeholder update: from the comms lead", CAROL), ("Stakeholder update: from the lead", ALICE)]
    assert timeline(bot, "cadence") == ["Stakeholder updates every 15 minutes", "No more stakeholder update reminders"]


# -- escalation to specialist teams ---------------------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_escalate_lists_the_teams_with_page_buttons_then_pages_by_dm_and_by_group_mention(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)

    # The list of teams, with what they cover and a Page button each; listing pages nobody.
    command = mention(fake, channel_id, ALICE, "escalate")
    menu = after(fake, channel_id, command, "Specialist teams for incident 1")
    for part in ("WebOps", "AWS, networking, deployments", "Security", "suspected breaches"):
        assert part in text_of(menu), part
    # Only the teams that can be reached get a button; the one nothing is set up for is named, with the setting.
    assert "Not set up to be paged: Database admins" in text_of(menu) and "PostgreSQL" not in text_of(menu)
    buttons = [e for b in menu.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]
               if e.get("action_id") == blocks.PAGE_TEAM]
    assert sorted(e["value"] for e in buttons) == ["1:security", "1:webops"]
    assert not fake.bot_messages(fake.dm_channel(WEBOPS))

    # Page button for a person: paged by DM, the result said in the channel.
    webops = next(e for e in buttons if e["value"] == "1:webops")
    assert fake.click_button(menu, blocks.PAGE_TEAM, ALICE, value=webops["value"]).ok  # the lead (issue 12)
    page = fake.wait_for_message(fake.dm_channel(WEBOPS), lambda m: "pages WebOps for incident 1" in m["text"])
    assert f"<@{ALICE}>" in page["text"] and f"<#{channel_id}>" in page["text"] and f"{bot.url}/incidents/1" in page["text"]
    after(fake, channel_id, command, f"Paged WebOps: <@{WEBOPS}> was sent a direct message")

    # By text, a user group: mentioned in the channel.
    command = mention(fake, channel_id, ALICE, "escalate security")
    after(fake, channel_id, command, "Page to Security queued (a mention of their Slack group)")
    group = after(fake, channel_id, command, f"<!subteam^{SECURITY_GROUP}>")
    assert "pages Security for incident 1" in group["text"]
    after(fake, channel_id, command, "Paged Security: the team was mentioned here")

    # No way to reach the team: refused, naming the setting, nothing paged; an unknown team lists the ones
    # that can be paged.
    command = mention(fake, channel_id, ALICE, "escalate dba")
    after(fake, channel_id, command, "Database admins cannot be paged: nothing is set up to reach them")
    command = mention(fake, channel_id, ALICE, "escalate nosuchteam")
    after(fake, channel_id, command, "'nosuchteam' is not a specialist team; teams: webops, security")
    # The timeline has the pages that were sent, once each was out, with how.
    assert timeline(bot, "page") == [f"Paged WebOps: <@{WEBOPS}> was sent a direct message",
                                     "Paged Security: the team was mentioned here"]
    assert len(fake.bot_messages(fake.dm_channel(WEBOPS))) == 1


# -- bringing people in, asking for help, the call ------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_invite_ask_and_call(slack):
    fake, bot, channels = slack
    declare(fake, channels)
    channel_id = comms_channel(fake, bot, channels, members=())
    assert CAROL not in fake.members(channel_id) and BOB not in fake.members(channel_id)

    # invite: people added to the channel, recorded.
    command = mention(fake, channel_id, ALICE, f"invite <@{CAROL}> and <@{BOB}>")
    after(fake, channel_id, command, "Inviting 2 to incident 1")
    fake.wait_for(lambda: {CAROL, BOB} <= fake.members(channel_id), message="invitees not in the channel")
    assert timeline(bot, "invite") == [f"Invited <@{CAROL}>, <@{BOB}>"]
    command = mention(fake, channel_id, ALICE, "invite @here")
    after(fake, channel_id, command, "Who?")

    # ask: a request with a link to the incident in every help channel (joining the one it is not in).
    refused = mention(fake, channel_id, BOB, "ask Anyone?")  # in the channel, but no role: not for him
    after(fake, channel_id, refused, "ask` of incident 1 is for the incident's role holders")
    command = mention(fake, channel_id, ALICE, "ask Has anyone seen card payments fail with a 502 from the PSP?")
    after(fake, channel_id, command, "Asked for help in #opg-all-team-digital, #opg-webops-community, "
                                     "#opg-developers")
    for name in HELP:
        asked = fake.wait_for_message(channels[name], lambda m: "Incident 1 needs help" in m.get("text", ""))
        for part in ("a 502 from the PSP", f"<#{channel_id}>", f"{bot.url}/incidents/1", f"<@{ALICE}>"):
            assert part in asked["text"], (name, part)
    assert [t for t in timeline(bot, "ask") if "a 502 from the PSP" in t]

    # call: Slack sends a typed link as <https://...>; it lands in the topic, the headline and the record.
    url = "https://meet.example.com/opg-incident-1"
    command = mention(fake, channel_id, ALICE, f"call <{url}>")
    after(fake, channel_id, command, f"Call for incident 1: {url}")
    fake.wait_for(lambda: url in fake.topic(channel_id), message="the call link is not in the topic")
    assert "Payments are failing" in fake.topic(channel_id) and f"{bot.url}/incidents/1" in fake.topic(channel_id)
    fake.wait_for(lambda: f"Call: <{url}>" in text_of(headline(fake, channels)),
                  message="the call link is not in the headline")
    after(fake, channel_id, command, f"Join the call: {url}")
    assert timeline(bot, "call") == [f"Call: {url}"]
    bad = mention(fake, channel_id, ALICE, "call tomorrow")
    after(fake, channel_id, bad, "Give the call's link")


# -- drills ----------------------------------------------------------------------------------------------

def test_drill_from_the_modal_is_labelled_in_the_headline_and_the_channel_name(slack):
    fake, bot, channels = slack
    declare(fake, channels, title="Practice: database failover", drill=["drill"])
    head = headline(fake, channels)
    assert "Incident 1 (drill): Practice: database failover" in text_of(head)
    assert bot.incident(1)["drill"] is True
    assert fake.click_button(head, blocks.CREATE_CHANNEL, ALICE).ok
    channel = fake.wait_for(lambda: bot.incident(1)["channel"])
    assert channel["name"].startswith("drill-") and channel["name"] == "drill-inc-1-practice-database-failover"
    assert fake.channel(channel["id"]).name == channel["name"]
    fake.wait_for_message(channel["id"], lambda m: "This is a drill" in m.get("text", ""))
    fake.wait_for(lambda: f"<#{channel['id']}>" in text_of(headline(fake, channels)))
    assert "(drill)" in text_of(headline(fake, channels))


# -- sharing the analysis ------------------------------------------------------------------------------------

@pytest.mark.parametrize("slack", ["socket"], indirect=True)
def test_rca_ready_and_share_after_the_close_and_again_once_it_changed(slack):
    fake, bot, channels = slack
    channel_id = incident_with_channel(fake, bot, channels)
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, "summary Card payments failed after release 42"))
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, "impact Nobody could pay"))
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, f"scribe <@{BOB}>"))

    # Before the close: neither ready nor shared.
    early = mention(fake, channel_id, ALICE, "rca ready")
    after(fake, channel_id, early, "Incident 1 is still open: the root-cause analysis follows the close")
    early = mention(fake, channel_id, BOB, "rca share")
    after(fake, channel_id, early, "Incident 1 is still open: the analysis is shared after the close")
    reacted(fake, channel_id, mention(fake, channel_id, ALICE, "close"))
    fake.wait_for(lambda: bot.incident(1)["status"] == "closed")

    early = mention(fake, channel_id, BOB, "rca share")
    after(fake, channel_id, early, "The lead marks the analysis ready first: `rca ready`")
    not_lead = mention(fake, channel_id, BOB, "rca ready")  # the scribe: a role holder, but not the lead
    after(fake, channel_id, not_lead, "Only the Incident Lead")
    assert not any(with_text(fake, channels[name], "root-cause analysis") for name in SHARE + (CLOUD,))

    ready = mention(fake, channel_id, ALICE, "rca ready")
    after(fake, channel_id, ready, "The analysis of incident 1 is ready; share it with `rca share`")
    share = mention(fake, channel_id, BOB, "rca share")
    after(fake, channel_id, share, "Sharing the analysis of incident 1 in #opg-delivery, #opg-all-team-digital, "
                                   f"#opg-leadership, #{CLOUD}.")
    for name in SHARE + (CLOUD,):
        shared = fake.wait_for_message(channels[name], lambda m: "root-cause analysis of incident 1" in m["text"])
        for part in ("Payments are failing", "Summary: Card payments failed after release 42",
                     f"{bot.url}/incidents/1/rca.md"):
            assert part in shared["text"], (name, part)
    assert "opg-all-staff" not in fake.channels
    assert "The root-cause analysis is ready to share" in timeline(bot, "rca")
    assert any(t.endswith(f"shared in #opg-delivery, #opg-all-team-digital, #opg-leadership, #{CLOUD}")
               for t in timeline(bot, "rca"))

    # Again, unchanged: refused. After a change: shared again, saying so.
    again = mention(fake, channel_id, BOB, "rca share")
    after(fake, channel_id, again, "was shared already, at")
    reacted(fake, channel_id, mention(fake, channel_id, BOB, "note The PSP confirmed the cause"))
    again = mention(fake, channel_id, BOB, "rca share")
    after(fake, channel_id, again, "Sharing the analysis of incident 1 again in #opg-delivery")
    for name in SHARE + (CLOUD,):
        fake.wait_for_message(channels[name], lambda m: m["text"].startswith("📖 Updated (it changed since it was "
                                                                              "shared at"))
        assert len(with_text(fake, channels[name], "root-cause analysis of incident 1")) == 2
    assert any(t.startswith("Root-cause analysis shared again, changed since") for t in timeline(bot, "rca"))
