"""End to end, issue 14 (the process as people live it): the real `errbot -c config.py` process with the
OPGSlack backend against the fake Slack. Everyone with a role in the comms channel, paging that tells the
truth, drills that page nobody, the post-incident order, commands as people type them, replies that name
the incident, the criteria in the form, the pre-close check, who posts updates and how often.

Assertions look at the fake workspace (channel members, messages, who received which DM) and at the
record (the living document's JSON: the timeline rows).
"""
from __future__ import annotations

import pytest
import yaml

import reliability_kit as kit

from fake_slack import FakeSlack
from opg_incident_slack import blocks
from slack_bot import ADMIN, ALICE, BOB, CAROL, ONCALL, PEOPLE, ROOT, SlackBot, seed
from slack_steps import after, declare, headline, mention, reacted, text_of, with_text

pytestmark = pytest.mark.e2e
SHIPPED_SETTINGS = ROOT / "plugins" / "opg_incident" / "settings.yml"
WEBOPS = "U0WEBOPS5"


def write_settings(tmp_path, change=None):
    data = yaml.safe_load(SHIPPED_SETTINGS.read_text(encoding="utf-8"))
    if change:
        change(data)
    path = tmp_path / "settings.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def start(tmp_path, change=None, env=None, channels_named=()):
    """A fake Slack (socket mode), its people and channels, and the bot with the shipped settings changed
    by `change`; a context manager yielding (fake, bot, channels)."""
    class Run:
        def __enter__(self):
            self.fake = FakeSlack("socket").__enter__()
            channels = seed(self.fake)
            self.fake.add_user(WEBOPS, "webops-oncall", real_name="WebOps on call")
            for name in channels_named:
                channels[name] = self.fake.add_channel(name, members=list(PEOPLE))
            self.bot = SlackBot(self.fake, tmp_path, env={"INCIDENT_SETTINGS": str(write_settings(tmp_path, change)),
                                                          **(env or {})}).__enter__()
            return self.fake, self.bot, channels

        def __exit__(self, *exc):
            self.bot.__exit__(*exc)
            errors = self.fake.internal_errors
            self.fake.__exit__(*exc)
            assert not errors, errors
    return Run()


def dm(fake, user, text):
    return fake.post_message(fake.dm_channel(user), user, text)


def answer(fake, user, sent, needle, timeout=10.0):
    """The bot's answer to `sent` in `user`'s DM that contains `needle`."""
    return after(fake, fake.dm_channel(user), sent, needle, timeout)


def create_channel(fake, bot, channels, number=1, user=ALICE) -> str:
    assert fake.click_button(headline(fake, channels, number), blocks.CREATE_CHANNEL, user).ok
    channel_id = fake.wait_for(lambda: (bot.incident(number)["channel"] or {}).get("id"))
    fake.wait_for_message(channel_id, lambda m: "This is the comms channel" in m.get("text", ""))
    return channel_id


def timeline(bot, kind, number=1) -> list:
    return [e["text"] for e in bot.incident(number)["timeline"] if e["kind"] == kind]


# -- 2. everyone with a role is in the comms channel --------------------------------------------------------

def test_everyone_with_a_role_is_invited_to_the_comms_channel_and_their_role_message_links_it(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        declare(fake, channels)  # ALICE reports and leads
        answer(fake, ALICE, dm(fake, ALICE, f"scribe 1 <@{BOB}>"), "is now Incident Scribe")
        answer(fake, ALICE, dm(fake, ALICE, f"comms 1 <@{CAROL}>"), "is now Communications Lead")
        # Before the channel exists, the role message says so.
        before = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "You are now Incident Scribe" in m["text"])
        assert "No comms channel yet" in before["text"]

        channel_id = create_channel(fake, bot, channels)
        fake.wait_for(lambda: {ALICE, BOB, CAROL} <= fake.members(channel_id),
                      message="the scribe and the comms lead were not invited at creation")
        assert ONCALL not in fake.members(channel_id) and ADMIN not in fake.members(channel_id)

        # A role given later (directly): invited, and the role message links the channel.
        command = mention(fake, channel_id, ALICE, "comms none")
        after(fake, channel_id, command, "has no Communications Lead now")
        command = mention(fake, channel_id, ALICE, f"comms <@{ADMIN}>")
        after(fake, channel_id, command, "is now Communications Lead")
        fake.wait_for(lambda: ADMIN in fake.members(channel_id), message="a new comms lead was not invited")
        role_dm = fake.wait_for_message(fake.dm_channel(ADMIN), lambda m: "You are now Communications Lead" in m["text"])
        assert f"Comms channel: <#{channel_id}>" in role_dm["text"]

        # A role moved by an accepted handover: the new holder is invited when they accept.
        command = mention(fake, channel_id, ALICE, f"handover lead <@{ONCALL}> over to you")
        after(fake, channel_id, command, "it moves when they accept")
        offer = fake.wait_for_message(fake.dm_channel(ONCALL), lambda m: "offers you the role of Incident Lead" in m["text"])
        assert f"Comms channel: <#{channel_id}>" in offer["text"]
        assert ONCALL not in fake.members(channel_id)  # not before accepting
        answer(fake, ONCALL, dm(fake, ONCALL, "accept"), "is now Incident Lead")
        fake.wait_for(lambda: ONCALL in fake.members(channel_id), message="the new lead was not invited")
        fake.wait_for(lambda: bot.incident(1)["roles"].get("lead") == ONCALL)


# -- 3. paging tells the truth -----------------------------------------------------------------------------

def test_with_nothing_set_up_nobody_is_said_to_be_paged_and_the_setting_is_named(tmp_path):
    with start(tmp_path, env={"INCIDENT_ONCALL": ""}) as (fake, bot, channels):
        declare(fake, channels)
        channel_id = create_channel(fake, bot, channels)
        listing = mention(fake, channel_id, ALICE, "escalate")
        reply = after(fake, channel_id, listing, "No specialist team can be paged")
        assert "specialists:" in reply["text"] and "Paging" not in reply["text"]
        command = mention(fake, channel_id, ALICE, "escalate webops")
        reply = after(fake, channel_id, command, "WebOps cannot be paged: nothing is set up to reach them")
        assert "slack_user, slack_group or pagerduty_routing_key of `webops`" in reply["text"]
        # The on-call lead: nobody set up; said in the channel, naming the setting, and on the timeline.
        fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, ALICE)
        said = fake.wait_for_message(channel_id, lambda m: "Nobody is set up to be paged" in m.get("text", ""))
        assert "paging.oncall_user" in said["text"] and "by hand" in said["text"]
        fake.wait_for(lambda: timeline(bot, "page_failed"))
        assert timeline(bot, "page") == [] and "paging.oncall_user" in timeline(bot, "page_failed")[0]
        assert not any("Paging" in m.get("text", "") or "Paged" in m.get("text", "")
                       for m in fake.bot_messages(channel_id))


def test_every_page_and_every_failed_page_is_on_the_timeline(tmp_path):
    def teams(data):
        data["specialists"] = [
            {"key": "webops", "name": "WebOps", "covers": "AWS", "slack_user": WEBOPS},
            {"key": "dba", "name": "Database admins", "slack_user": "U0GONE999"},  # no such person
            {"key": "security", "name": "Security"}]
    with start(tmp_path, teams) as (fake, bot, channels):
        # the Database admins' person does not exist: that page fails (Slack: no channel for that id), and
        # their name cannot be looked up
        fake.expect_error("channel_not_found", "chat.postMessage")
        fake.expect_error("user_not_found", "users.info")
        declare(fake, channels)
        channel_id = create_channel(fake, bot, channels)
        listing = mention(fake, channel_id, ALICE, "escalate")
        menu = after(fake, channel_id, listing, "Specialist teams for incident 1")
        assert "WebOps" in text_of(menu) and "Not set up to be paged: Security" in text_of(menu)
        buttons = [e["value"] for b in menu.get("blocks", []) if b.get("type") == "actions" for e in b["elements"]]
        assert buttons == ["1:webops", "1:dba"]

        command = mention(fake, channel_id, ALICE, "escalate webops")
        queued = after(fake, channel_id, command, "Page to WebOps queued")
        assert "Paging" not in queued["text"]
        after(fake, channel_id, command, f"Paged WebOps: <@{WEBOPS}> was sent a direct message")
        fake.wait_for_message(fake.dm_channel(WEBOPS), lambda m: "pages WebOps for incident 1" in m["text"])
        command = mention(fake, channel_id, ALICE, "escalate dba")
        failed = after(fake, channel_id, command, "Paging Database admins failed")
        assert "by hand" in failed["text"]
        fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, ALICE)
        fake.wait_for_message(fake.dm_channel(ONCALL), lambda m: "pages you for incident 1" in m["text"])
        fake.wait_for(lambda: len(timeline(bot, "page")) == 2)
        assert timeline(bot, "page") == [f"Paged WebOps: <@{WEBOPS}> was sent a direct message",
                                         f"Paged the on-call lead: <@{ONCALL}> was sent a direct message"]
        [failure] = timeline(bot, "page_failed")
        assert failure.startswith("Paging Database admins failed (the direct message to <@U0GONE999>")


# -- 8. replies name the incident ---------------------------------------------------------------------------

def test_a_change_by_number_answers_with_the_number_and_the_title(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        declare(fake, channels, title="Login is slow")
        headline(fake, channels, 1)
        declare(fake, channels, title="Payments API timing out")
        headline(fake, channels, 2)
        reply = answer(fake, ALICE, dm(fake, ALICE, "impact 2 Nobody can pay"), "impact is now")
        assert reply["text"].startswith("Incident 2 — Payments API timing out: the impact is now:")
        assert bot.incident(2)["impact"] == "Nobody can pay" and bot.incident(1)["impact"] == ""
        reply = answer(fake, ALICE, dm(fake, ALICE, "sev 1 critical"), "Critical")
        assert reply["text"].startswith("Incident 1 — Login is slow: the severity is now")
        # In the incident's own channel the incident is implied: the short answer.
        channel_id = create_channel(fake, bot, channels, 2)
        command = mention(fake, channel_id, ALICE, "summary Timeouts from the PSP")
        reply = after(fake, channel_id, command, "The summary of incident 2 is now")
        assert "Payments API timing out:" not in reply["text"]


# -- 4. drills page nobody -----------------------------------------------------------------------------------

def test_a_drill_pages_nobody_and_tells_only_its_participants(tmp_path):
    from test_e2e_paging import PagerDuty

    pagerduty = PagerDuty()

    def real_routes(data):
        data["paging"].update(pagerduty_routing_key="R0UTINGKEY0001", drill_routing_key="DR1LLKEY0001")
        data["specialists"] = [{"key": "webops", "name": "WebOps", "slack_user": WEBOPS,
                                "pagerduty_routing_key": "W3B0PSKEY001"}]
        data["stakeholders"]["channels"].update(default=["service-status"], major=["service-status"])
        data["stakeholders"]["help_channels"] = ["opg-developers"]
    try:
        with start(tmp_path, real_routes, env={"INCIDENT_PAGERDUTY_URL": pagerduty.url},
                   channels_named=("service-status", "opg-developers")) as (fake, bot, channels):
            declare(fake, channels, title="Practice: database failover", drill=["drill"])
            channel_id = create_channel(fake, bot, channels)
            after(fake, channel_id, mention(fake, channel_id, ALICE, f"comms <@{BOB}>"), "is now Communications Lead")

            # The on-call lead's page: not to the on-call, nor PagerDuty's real service; to the person who
            # asked, labelled DRILL, and to the drill routing key.
            fake.click_button(headline(fake, channels), blocks.PAGE_ONCALL, BOB)
            fake.wait_for_message(channel_id, lambda m: "Paged the on-call lead" in m.get("text", ""))
            page = fake.wait_for_message(fake.dm_channel(BOB), lambda m: "pages you for incident 1" in m["text"])
            assert page["text"].startswith("🧪 DRILL")
            # A specialist team: the same.
            command = mention(fake, channel_id, ALICE, "escalate webops")
            after(fake, channel_id, command, "Paged WebOps")
            fake.wait_for_message(fake.dm_channel(ALICE), lambda m: "DRILL" in m["text"] and "pages WebOps" in m["text"])
            assert [e["routing_key"] for e in pagerduty.events] == ["DR1LLKEY0001", "DR1LLKEY0001"]
            assert all(e["payload"]["custom_details"]["drill"] is True for e in pagerduty.events)
            assert all(e["payload"]["summary"].startswith("DRILL: Incident 1") for e in pagerduty.events)
            assert not fake.bot_messages(fake.dm_channel(ONCALL)) and not fake.bot_messages(fake.dm_channel(WEBOPS))
            assert all(t.startswith("🧪 DRILL") for t in timeline(bot, "page")) and len(timeline(bot, "page")) == 2

            # The role message is labelled too.
            command = mention(fake, channel_id, ALICE, f"scribe <@{CAROL}>")
            role_dm = fake.wait_for_message(fake.dm_channel(CAROL), lambda m: "You are now Incident Scribe" in m["text"])
            assert role_dm["text"].startswith("🧪 DRILL")

            # Stakeholder posts stay with the drill, labelled, saying where they would have gone.
            command = mention(fake, channel_id, ALICE, "update Failover started")
            after(fake, channel_id, command, "Update posted")
            post = fake.wait_for_message(channel_id, lambda m: "not sent to #service-status" in text_of(m))
            assert "🧪 DRILL" in text_of(post) and "Failover started" in text_of(post)
            command = mention(fake, channel_id, ALICE, "ask Anyone done a failover before?")
            fake.wait_for_message(channel_id, lambda m: "not sent to #opg-developers" in text_of(m))
            reacted(fake, channel_id, mention(fake, channel_id, ALICE, "note the last step"))
            fake.wait_for(lambda: kit.pending_outbox(bot.database_url) == 0, message="the outbox never emptied")
            assert not fake.bot_messages(channels["service-status"]) and not fake.bot_messages(channels["opg-developers"])
    finally:
        pagerduty.close()


# -- 7. as people type -------------------------------------------------------------------------------------

def test_commands_as_people_type_them(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        declare(fake, channels)
        channel_id = create_channel(fake, bot, channels)
        fake.join(channel_id, BOB)
        for typed, expected in (("Sev 1 Critical.", "Incident 1 is now ⛈️ Critical."),
                                ("sev: major", "Incident 1 is now 🌧️ Major."),
                                # The process document's `sev <Critical>`: Slack sends < and > escaped.
                                ("sev 1 &lt;Critical&gt;", "Incident 1 is now ⛈️ Critical.")):
            command = mention(fake, channel_id, ALICE, typed)
            assert after(fake, channel_id, command, "Incident 1 is now")["text"] == expected, typed
        assert [e["text"] for e in bot.incident(1)["timeline"] if e["kind"] == "severity"][-3:] == [
            "Severity changed from Major to Critical", "Severity changed from Critical to Major",
            "Severity changed from Major to Critical"]

        typo = mention(fake, channel_id, ALICE, "sumary the database is down")
        assert "Did you mean `summary`?" in after(fake, channel_id, typo, "I don't know that command")["text"]
        typo = answer(fake, ALICE, dm(fake, ALICE, "imapct 1 nobody can pay"), "I don't know that command")
        assert "Did you mean `impact`?" in typo["text"] and bot.incident(1)["impact"] == ""

        # The number first or the role first, outside the channel.
        answer(fake, ALICE, dm(fake, ALICE, f"role 1 scribe <@{BOB}>"), "is now Incident Scribe")
        answer(fake, ALICE, dm(fake, ALICE, f"role comms 1 <@{CAROL}>"), "is now Communications Lead")
        assert (bot.incident(1)["roles"]["scribe"], bot.incident(1)["roles"]["comms"]) == (BOB, CAROL)

        # A channel name as typed, in capitals: Slack's names are lower case.
        fake.add_channel("opg-use-an-lpa", members=[BOB])
        command = mention(fake, channel_id, ALICE, "notify #Opg-Use-An-LPA")
        reply = after(fake, channel_id, command, "will get the stakeholder updates")
        assert "#opg-use-an-lpa will get the stakeholder updates of incident 1" in reply["text"]
        assert "#opg-use-an-lpa will get the stakeholder updates" in timeline(bot, "notify")

        # "Mark it with `action done N`" works where it is given: in the channel, and by DM with the number.
        command = mention(fake, channel_id, BOB, "action Restart the payment workers")
        hint = after(fake, channel_id, command, "Mark it with")["text"]
        assert hint.endswith("Mark it with `action done 1`.")
        command = mention(fake, channel_id, BOB, "action done 1")
        after(fake, channel_id, command, "Action 1 of incident 1 is done.")
        hint = answer(fake, BOB, dm(fake, BOB, "action 1 Scale the workers up"), "Mark it with")["text"]
        assert hint.endswith("Mark it with `action done 1 2`.")
        answer(fake, BOB, dm(fake, BOB, "action done 1 2"), "action 2 is done")
        assert [e["text"] for e in bot.incident(1)["timeline"] if e["kind"] == "action_done"] == [
            "Action 1 done: Restart the payment workers", "Action 2 done: Scale the workers up"]


# -- 9. is it an incident? ------------------------------------------------------------------------------------

def test_the_declare_form_and_help_show_the_criteria_and_what_each_severity_means(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        assert fake.slash_command("/opg-incident", "Payments are failing", ALICE, channels["general"]).ok
        view = fake.wait_for(lambda: next(iter(fake.views.values()), None), message="no form")
        text = json_text(view)
        for part in ("Is it an incident?", "requires an immediate response", "severely degrades the user experience",
                     "security may be compromised", "data may be lost"):
            assert part in text, part
        severity = next(b for b in view["blocks"] if b.get("block_id") == "severity")["element"]
        assert {o["value"]: o["description"]["text"] for o in severity["options"]} == {
            "critical": "A service is down or data is at risk; all hands.",
            "major": "A service is badly degraded for many users.",
            "trivial": "Little or no user impact; worth recording."}
        ack = fake.submit_view(view["id"], {"severity": "critical"}, user=ALICE)
        assert ack.ok and not (ack.payload or {}).get("errors"), ack
        fake.wait_for(lambda: timeline(bot, "severity") == ["Severity set to Critical"])

        reply = answer(fake, ALICE, dm(fake, ALICE, "help"), "How an incident runs")
        for part in ("Is it an incident?", "requires an immediate response", "data may be lost",
                     "Critical: A service is down or data is at risk; all hands; ",  # not "all hands.;"
                     "Trivial: Little or no user impact; worth recording.\n",  # not "recording.."
                     "\nThe Incident Lead:\n"):  # a group on its own line
            assert part in reply["text"], part


def json_text(view) -> str:
    import json
    return json.dumps(view, ensure_ascii=False)


# -- 10. the pre-close check --------------------------------------------------------------------------------

def test_close_lists_what_is_missing_asks_to_confirm_and_records_the_reason(tmp_path):
    with start(tmp_path) as (fake, bot, channels):
        declare(fake, channels)
        channel_id = create_channel(fake, bot, channels)
        reacted(fake, channel_id, mention(fake, channel_id, ALICE, "action Restart the payment workers"))
        command = mention(fake, channel_id, ALICE, "close")
        check = after(fake, channel_id, command, "Before closing incident 1")["text"]
        for part in ("a summary", "an impact", "an Incident Scribe", "1 open action (1)", "`close anyway`",
                     "`close anyway blocked until &lt;date&gt;`"):  # Slack's escaping: shown as <date>
            assert part in check, part
        assert bot.incident(1)["status"] == "open" and not timeline(bot, "closed")
        command = mention(fake, channel_id, ALICE, "close anyway blocked until 2024-03-12")
        reacted(fake, channel_id, command)  # a ✅: the channel's closing notice (below) says the rest
        fake.wait_for(lambda: "This incident is closed (blocked until 2024-03-12)" in text_of(headline(fake, channels)))
        assert timeline(bot, "closed") == [f"<@{ALICE}> closed the incident: blocked until 2024-03-12"]
        fake.wait_for_message(channel_id, lambda m: "closed by" in m.get("text", "") and "blocked until" in m["text"])

        # The Close button: refused at once for someone who may not close; a form for the lead.
        declare(fake, channels, title="Emails are late")
        head = headline(fake, channels, 2)
        fake.click_button(head, blocks.CLOSE, BOB)
        fake.wait_for(lambda: [m for m in fake.ephemeral_for(BOB) + fake.bot_messages(fake.dm_channel(BOB))
                               if "`close` of incident 2 is for" in m.get("text", "")], message="Bob was not told why not")
        assert not [v for v in fake.views.values() if v.get("callback_id") == blocks.CLOSE_VIEW]
        fake.click_button(head, blocks.CLOSE, ALICE)
        view = fake.wait_for(lambda: next((v for v in fake.views.values()
                                           if v.get("callback_id") == blocks.CLOSE_VIEW), None))
        form = json_text(view)
        assert "a summary" in form and "an impact" in form and "an Incident Scribe" in form
        ack = fake.submit_view(view["id"], {"reason": "blocked"}, user=ALICE)  # blocked, but until when?
        assert "until" in ack.payload["errors"] and bot.incident(2)["status"] == "open"
        ack = fake.submit_view(view["id"], {"reason": "resolved"}, user=ALICE)
        assert ack.ok and not (ack.payload or {}).get("errors"), ack
        fake.wait_for(lambda: bot.incident(2)["status"] == "closed")
        assert timeline(bot, "closed", 2) == [f"<@{ALICE}> closed the incident: resolved"]
        fake.wait_for(lambda: "This incident is closed (resolved)" in text_of(headline(fake, channels, 2)))


# -- 12. INCIDENT_PUBLIC_URL -------------------------------------------------------------------------------

WARNING = "INCIDENT_PUBLIC_URL is not set (or points at this machine)"


def test_an_unset_public_url_is_warned_about_at_start(tmp_path):
    for name in ("unset", "set"):
        (tmp_path / name).mkdir()
    with start(tmp_path / "unset", env={"INCIDENT_PUBLIC_URL": ""}) as (fake, bot, channels):
        fake.wait_for(lambda: bot.log_has(WARNING), message="no warning about INCIDENT_PUBLIC_URL")
        declare(fake, channels)
        assert "http://localhost:" in text_of(headline(fake, channels))  # what the warning is about
    with start(tmp_path / "set", env={"INCIDENT_PUBLIC_URL": "https://incidents.example.org"}) as (fake, bot, _):
        # Up (its web server starts after the Slack effects are set up, where the warning is given): none.
        assert bot.log_has("opg_incident") and not bot.log_has(WARNING)
