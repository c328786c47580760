"""End to end, issue 15 in Slack: the real `errbot -c config.py` process with the OPGSlack backend against
the fake Slack, publishing to the Confluence stand-in (both on loopback). The Slack outbox worker runs
the job: the link lands in the channel, on the headline, in the living document's JSON and in the
`rca share` message; refusals and failures (no such space, a title taken by someone else's page,
Confluence unreachable and then back, a page edited in Confluence, 429, 401) go to the person who asked,
as ephemeral notes."""
from __future__ import annotations

import pytest

from fake_confluence import FakeConfluence
from fake_confluence.server import TOKEN
from fake_slack import FakeSlack
from slack_bot import ALICE, BOB, CAROL, PEOPLE, SlackBot, seed
from slack_steps import after, declare, headline, mention, reacted, text_of
from test_e2e_comms import comms_channel

pytestmark = pytest.mark.e2e
SHARE = ("opg-delivery", "opg-all-team-digital", "opg-leadership")
TITLE = "Incident 1: Payments are failing — root cause analysis"


@pytest.fixture
def setup(tmp_path):
    with FakeConfluence() as wiki, FakeSlack("socket") as fake:
        channels = seed(fake)
        for name in SHARE:
            channels[name] = fake.add_channel(name, members=list(PEOPLE))
        with SlackBot(fake, tmp_path, env=wiki.bot_env()) as bot:
            yield fake, bot, channels, wiki
            log = bot.log_file.read_text(errors="replace")
        assert not fake.internal_errors, fake.internal_errors
    assert TOKEN not in log and "rotated" not in log  # tokens never in the log


def told(fake, user, needle, timeout=15.0) -> str:
    """The ephemeral note (or DM) to `user` that contains `needle`."""
    def find():
        notes = [m.get("text", "") for m in fake.ephemeral_for(user)]
        notes += [m.get("text", "") for m in fake.bot_messages(fake.dm_channel(user))]
        return next((n for n in notes if needle in n), None)
    return fake.wait_for(find, timeout=timeout, message=f"nothing told to {user} with {needle!r}")


def test_publish_update_refuse_force_share_and_failures_in_slack(setup):
    fake, bot, channels, wiki = setup
    declare(fake, channels)
    fake.wait_for(lambda: bot.incident(1)["roles"].get("lead") == ALICE)
    channel = comms_channel(fake, bot, channels, members=(BOB, CAROL))
    after(fake, channel, mention(fake, channel, ALICE, f"scribe <@{BOB}>"), "is now Incident Scribe")
    after(fake, channel, mention(fake, channel, ALICE, "summary Card payments fail <!channel>"), "The summary")
    after(fake, channel, mention(fake, channel, ALICE, "close"), "this is missing: an impact")
    after(fake, channel, mention(fake, channel, ALICE, "close anyway"), "is closed")

    after(fake, channel, mention(fake, channel, CAROL, "rca publish"), "is for the incident's role holders, its reporter and bot admins")
    # no such space (404): told, nothing made
    spaces = dict(wiki.spaces)
    wiki.spaces.clear()
    mention(fake, channel, ALICE, "rca publish")
    assert "no space with the key OPG" in told(fake, ALICE, "was not published. Confluence has no space")
    wiki.spaces.update(spaces)
    # the title taken by a page someone else made: told, their page untouched, and not taken up later
    theirs = wiki.add_page("OPG", TITLE, "<p>someone's notes</p>")
    mention(fake, channel, ALICE, "rca publish")
    assert f"/pages/{theirs.id}/" in told(fake, ALICE, "opg-incident did not make it")
    assert (theirs.body, theirs.version, len(wiki.pages)) == ("<p>someone's notes</p>", 1, 1)
    del wiki.pages[theirs.id]
    # unreachable: told once, then published by the outbox's retry once Confluence is back
    wiki.stop()
    asked = mention(fake, channel, ALICE, "rca publish")
    after(fake, channel, asked, "Publishing the root-cause analysis of incident 1 to Confluence (space OPG)")
    assert "I will keep trying" in told(fake, ALICE, "cannot be reached (connection refused)")
    assert not wiki.pages
    wiki.start()
    done = after(fake, channel, asked, "is in Confluence (version 1)")
    [page] = wiki.titled(TITLE)
    url = f"{wiki.url}/spaces/OPG/pages/{page.id}/"
    assert url in done["text"] and "Card payments fail @channel" in page.body  # Slack markup as text
    assert ALICE not in page.body and BOB not in page.body and "alice" in page.body  # people by name, not id
    assert bot.incident(1)["rca_url"].startswith(url)
    fake.wait_for(lambda: url in text_of(headline(fake, channels)), message="no analysis link on the headline")
    assert "📖 Root-cause analysis" in text_of(headline(fake, channels))
    # the channel's bookmark to the analysis: its Confluence page (one bookmark, beside the living document's)
    fake.wait_for(lambda: [b["link"] for b in fake.channel(channel).bookmarks if b["title"] == "Root-cause analysis"]
                  == [bot.incident(1)["rca_url"]], message="no bookmark to the Confluence page")
    assert [b["title"] for b in fake.channel(channel).bookmarks] == ["Living document", "Root-cause analysis"]

    # again, by the scribe, after a change: the same page, version 2
    after(fake, channel, mention(fake, channel, ALICE, "impact Nobody could pay for 40 minutes"), "The impact")
    after(fake, channel, mention(fake, channel, BOB, "rca publish"), "is in Confluence (version 2)")
    assert wiki.titled(TITLE) == [page] and len(wiki.pages) == 1 and "Nobody could pay" in page.body

    # changed in Confluence meanwhile: refused (told to Alice), then --force
    wiki.edit(page.id, "<p>Our analysis</p>", by="Alice Editor")
    mention(fake, channel, ALICE, "rca publish")
    note = told(fake, ALICE, "changed in Confluence since it was published")
    assert "was not published" in note and "rca publish --force" in note
    assert page.body == "<p>Our analysis</p>"
    after(fake, channel, mention(fake, channel, ALICE, "rca publish --force"), "is in Confluence (version 4)")

    # rate-limited: told, then done after Retry-After
    reacted(fake, channel, mention(fake, channel, ALICE, "note One more thing"))  # a ✅ says it
    wiki.fail("PUT", "/content/", 429, retry_after="1")
    asked = mention(fake, channel, ALICE, "rca publish")
    assert "trying again in 1 s" in told(fake, ALICE, "Confluence asks us to slow down (429)")
    after(fake, channel, asked, "is in Confluence (version 5)")

    # a wrong token
    wiki.token = "rotated"
    mention(fake, channel, ALICE, "rca publish")
    assert "CONFLUENCE_TOKEN" in told(fake, ALICE, "Confluence refused the credentials (401)")
    wiki.token = TOKEN

    # `rca share` links the page
    after(fake, channel, mention(fake, channel, ALICE, "rca ready"), "is ready")
    after(fake, channel, mention(fake, channel, BOB, "rca share"), "Sharing the analysis")
    for name in SHARE:
        shared = fake.wait_for_message(channels[name], lambda m: "root-cause analysis of incident 1" in m["text"])
        assert url in shared["text"] and "rca.md" not in shared["text"]
    assert page.version == 5 and len(wiki.pages) == 1
