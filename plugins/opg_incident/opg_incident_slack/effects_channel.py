"""Slack effects on an incident's comms channel: made and set up once (people with a role invited, the topic,
the welcome, the living document bookmarked), the analysis bookmarked once it exists, archived, and brought
back on reopen. Slack lets no bot unarchive a channel: a person's user token (SLACK_USER_TOKEN) does it, or the
lead is told how, and the incident carries on in its headline's thread until someone has. Part of Effects."""
from __future__ import annotations

import logging
import re
import time

from opg_incident_core.help import channel_commands
from opg_incident_core.text import defuse

from .gateway import SlackError
from .kinds import KINDS

log = logging.getLogger(__name__)
DOC_BOOKMARK = "Living document"
RCA_BOOKMARK = "Root-cause analysis"
ARCHIVED_CHECK_SECONDS = 30.0  # how long "still archived" is believed before Slack is asked again


def channel_name(pattern: str, incident, attempt: int = 0) -> str:
    """A valid Slack channel name from the settings' pattern: lowercase a-z0-9-_, at most 80 chars."""
    slug = re.sub(r"[^a-z0-9]+", "-", incident.title.lower()).strip("-") or "incident"
    name = pattern.format(number=incident.number, slug=slug, date=incident.declared_at.strftime("%Y-%m-%d"))
    name = re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")
    suffix = f"-{attempt + 1}" if attempt else ""
    return (name[: 80 - len(suffix)].rstrip("-") + suffix) or f"inc-{incident.number}"


class ChannelEffects:
    # -- made and set up, once ------------------------------------------------------------------------
    @KINDS.steps("create_channel", what="set up the comms channel")
    def comms_channel_steps(self, item) -> list:
        """Create, then set up. A second click's job (queued behind the first, which made the channel) has
        nothing to do; a job that may have made it before a crash (its first step started) goes on."""
        number, by = item.number, item.payload.get("by", "")
        inc = self.service.get(number)
        if inc.channel_id and item.step == 0 and not item.may_have_sent:
            log.info("Incident %s has its comms channel already: nothing to set up again", number)
            return []
        retried = item.may_have_sent
        return [
            lambda: self.create_comms_channel(number, by),
            lambda: self._channel_step(number, lambda inc: self.invite(inc, [*inc.roles.values(), by])),
            lambda: self._channel_step(number, lambda inc: self.slack.set_topic(
                inc.channel_id, f"{inc.title} | {self.document_url(number)}")),
            lambda: self._channel_step(number, lambda inc: self.slack.post(inc.channel_id, self._welcome(inc))),
            lambda: self._channel_step(number, lambda inc: self.bookmark(
                inc, DOC_BOOKMARK, self.document_url(number), look=retried)),
        ]

    def create_comms_channel(self, number: int, by: str) -> None:
        inc = self.service.get(number)
        if inc.channel_id:
            return
        try:
            for attempt in range(10):
                pattern = ("drill-" if inc.drill else "") + self.settings.channels.comms_pattern
                name = channel_name(pattern, inc, attempt)
                try:
                    channel = self.slack.create_channel(name)  # takes over one it made before a crash
                    break
                except SlackError as exc:
                    if exc.code != "name_taken":
                        raise
            else:
                raise SlackError("conversations.create", "name_taken")
        except SlackError as exc:
            if not exc.transient:
                self._best(self.tell, by, None, f"Sorry, I could not create the comms channel of incident "
                                                f"{number}: {exc}. Create one by hand and invite me.")
            raise
        self.service.attach_channel(number, channel, name, by)

    def _channel_step(self, number: int, step) -> None:
        inc = self.service.get(number)
        if inc.channel_id:
            step(inc)

    def _welcome(self, inc) -> str:
        """What the channel is, the living document, and the key commands per role (from the registry)."""
        process = f"\nThe process: {self.settings.process_url}" if self.settings.process_url else ""
        drill = "🧪 This is a drill: practise the process, page nobody unless asked.\n" if inc.drill else ""
        return (f"👋 {drill}This is the comms channel of incident {inc.number}: {defuse(inc.title)}\n"
                f"Living document: {self.document_url(inc.number)} (bookmarked above)\n"
                f"Mention me with a command, or use `/opg-incident <command>`:\n{channel_commands()}\n"
                f"Severities: {', '.join(s.name for s in self.settings.severities)}. Pin important messages: they go "
                f"on the timeline.{process}")

    def invite(self, inc, users) -> None:
        """Invite those of `users` not in the channel yet (Slack refuses a call that invites only members)."""
        if self.channel_usable(inc):
            self.slack.invite(inc.channel_id, users)

    # -- bookmarks ------------------------------------------------------------------------------------
    def bookmark(self, inc, title: str, url: str, look: bool = True) -> None:
        """Our bookmark called `title` points at `url`: added once, edited when the link changes. `look`:
        there may be one already (else it is a new channel's first)."""
        if not self.channel_usable(inc):
            return
        found = next((b for b in self.slack.bookmarks(inc.channel_id) if b.get("title") == title), None) \
            if look else None
        if found is None:
            self.slack.add_bookmark(inc.channel_id, title, url)
        elif found.get("link") != url:
            self.slack.edit_bookmark(inc.channel_id, found["id"], title, url)

    @KINDS.announcement("rca_ready", "rca_published", what="bookmark the root-cause analysis")
    def bookmark_rca(self, inc, happened, item) -> None:
        """The analysis next to the living document: its Confluence page once published, else the draft."""
        if inc.channel_id:
            self.bookmark(inc, RCA_BOOKMARK, inc.rca_url or f"{self.document_url(inc.number)}/rca.md")

    # -- archived, and back ---------------------------------------------------------------------------
    @KINDS.announcement("archived", what="archive the comms channel")
    def archive_now(self, inc, happened, item) -> None:
        if not inc.channel_id:
            return
        self._best(self.slack.post, inc.channel_id, "🗄️ Archiving this channel. The record stays in the "
                                                    f"living document: {self.document_url(inc.number)}")
        self.slack.archive(inc.channel_id)

    def channel_usable(self, inc) -> bool:
        """The comms channel takes posts: it exists and is not archived. One still archived after its incident
        was reopened is asked about again (at most every ARCHIVED_CHECK_SECONDS): once someone has unarchived
        it, the record says so and the incident is back in its channel."""
        if not inc.channel_id:
            return False
        if not inc.channel_archived:
            return True
        if inc.status == "closed":
            return False
        checks = self.__dict__.setdefault("_archived_checks", {})
        if time.monotonic() - checks.get(inc.channel_id, -1e9) < ARCHIVED_CHECK_SECONDS:
            return False
        checks[inc.channel_id] = time.monotonic()
        if self.slack.is_archived(inc.channel_id):
            return False
        self.service.mark_channel_archived(inc.number, False)
        checks.pop(inc.channel_id, None)
        log.info("The comms channel of incident %s was unarchived: back in it", inc.number)
        return True

    @KINDS.announcement("reopened", what="announce that the incident is open again")
    def _announce_reopen(self, inc, happened, item) -> None:
        by = happened.by
        back = self._bring_back(inc, by) if inc.channel_id else False
        if back:
            self._best(self.slack.post, inc.channel_id, f"🔥 Incident {inc.number} is open again.")
        if inc.headline_ts:
            where = "" if back or not inc.channel_id else (
                f" Its comms channel <#{inc.channel_id}> is archived: until someone unarchives it, this thread "
                f"is where it is worked on.")
            self._best(self.slack.post, inc.headline_channel_id, f"Incident {inc.number} is open again.{where}",
                       thread_ts=inc.headline_ts)
        self._tell_stakeholders(inc, f"🔥 Incident {inc.number} is open again: {defuse(inc.title)}")

    def _bring_back(self, inc, by: str | None) -> bool:
        """Reopened: its channel unarchived if it was archived (with the user token), or the lead told how."""
        if not self.slack.is_archived(inc.channel_id):
            if inc.channel_archived:
                self.service.mark_channel_archived(inc.number, False)
            return True
        if self.slack.can_unarchive:
            try:
                self.slack.unarchive(inc.channel_id)
                log.info("Unarchived the comms channel of incident %s with the user token", inc.number)
                if inc.channel_archived:
                    self.service.mark_channel_archived(inc.number, False)
                return True
            except SlackError as exc:
                if exc.transient:
                    raise
                log.warning("Could not unarchive the comms channel of incident %s with the user token: %s",
                            inc.number, exc)
        self.service.mark_channel_archived(inc.number, True)
        who = inc.roles.get("lead") or by or inc.reporter
        link = f"{self.slack.workspace_url().rstrip('/')}/archives/{inc.channel_id}"
        text = (f"🔥 Incident {inc.number} is open again, but its comms channel <#{inc.channel_id}> is archived, "
                f"and Slack lets no bot unarchive a channel. Please open {link} and click *Unarchive channel*. "
                f"Until someone does, I post in the headline's thread in #{self.settings.channels.incidents}. "
                f"(To let me do it myself next time, a Slack admin sets SLACK_USER_TOKEN: see the README.)")
        if who and who[:1] in "UW":
            self._best(self.slack.dm, who, text)
        log.warning("Incident %s reopened with its comms channel archived; no SLACK_USER_TOKEN to unarchive it: "
                    "%s is told", inc.number, who)
        return False
