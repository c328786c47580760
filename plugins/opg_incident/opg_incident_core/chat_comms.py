"""Chat commands for keeping everyone informed and bringing people in."""
from __future__ import annotations

import re

from .commands import IN_CHANNEL, RESPONDERS, command  # noqa: F401
from .chat_base import USAGE, Caller, Reply
from .errors import InvalidInput
from . import views
from .text import PERSON_OR_GROUP, defuse, mention, unknown_person



class CommsCommands:
    """Part of ChatCommands (which provides service, _incident and people_by_id)."""

    @command("update", usage="update <text>", help="Post a stakeholder update (the Communications Lead or the Incident Lead).", group="comms", may=RESPONDERS)
    def update(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["update"])
        if not text.strip():
            raise InvalidInput(f"Say what the update is. Usage: `{USAGE['update']}`.")
        out = self.service.post_update(number, text, caller.user)
        where = self.service.stakeholder_channels(number)
        told = ", ".join(_ref(c) for c in where)
        return self._said(number, f"Update posted for incident {number}" + (f" (and sent to {told})." if told else "."),
                          out, "update posted" + (f" (and sent to {told})." if told else "."))

    @command("updates", usage="updates [every <minutes>m|off]", help="List the stakeholder updates; `updates every "
             "30m` or `updates off` sets how often they are due (the Communications Lead's choice).", group="comms")
    def updates(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["updates"])
        text = text.strip().lower()
        if text:
            return self._cadence(number, text, caller)
        items = self.service.updates(number)
        every = self.service.update_cadence(number)
        due = f"Updates are due every {every} minutes." if every else "Update reminders are off."
        if not items:
            return Reply(f"No stakeholder updates for incident {number} yet: `{USAGE['update']}`. {due}")
        fmt = self.service.format_time
        return Reply("\n".join(f"{fmt(u.at)} [{u.status}] {defuse(u.text)} ({mention(u.author)})" for u in items)
                     + f"\n{due}")

    def _cadence(self, number: int, text: str, caller: Caller) -> Reply:
        if text == "off":
            out = self.service.set_update_cadence(number, None, caller.user)
            return self._said(number, f"No more stakeholder update reminders for incident {number}.", out,
                              "no more stakeholder update reminders.")
        match = re.fullmatch(r"(?:every\s+)?(\d{1,4})\s*(m|min|mins|minutes|h|hour|hours)?", text)
        if not match:
            raise InvalidInput(f"Usage: `{USAGE['updates']}`, e.g. `updates every 30m` or `updates off`.")
        minutes = int(match.group(1)) * (60 if (match.group(2) or "m").startswith("h") else 1)
        out = self.service.set_update_cadence(number, minutes, caller.user)
        return self._said(number, f"Stakeholder updates for incident {number} are due every {minutes} minutes.", out,
                          f"stakeholder updates are due every {minutes} minutes.")

    @command("notify", usage="notify #channel", help="Send the stakeholder updates to another channel too.", group="comms", may=RESPONDERS)
    def notify(self, args: str, caller: Caller) -> Reply:
        number, channel = self._incident(args, caller, usage=USAGE["notify"])
        out = self.service.notify(number, channel, caller.user)
        if not out.changed:
            return self._said(number, "That channel already gets the updates.", out)
        # Not at the start of the line: errbot's Markdown would make "#name ..." a heading.
        return self._said(number, f"Done: {_ref(out.happened[0].new)} will get the stakeholder updates of incident "
                                  f"{number}.", out)

    @command("call", usage="call <url>", help="Share the call link in the topic, headline and living document.", group="lead", may=RESPONDERS)
    def call(self, args: str, caller: Caller) -> Reply:
        number, url = self._incident(args, caller, usage=USAGE["call"])
        out = self.service.set_call(number, url, caller.user)
        return self._said(number, f"Call for incident {number}: {out.incident.call_url}", out,
                          f"call {out.incident.call_url}")

    @command("invite", usage="invite <@user|@group> ...", help="Bring people or user groups into the incident channel.", group="lead", may=RESPONDERS)
    def invite(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["invite"])
        people = [u or g or "@" + n for u, g, n in PERSON_OR_GROUP.findall(text)]
        people = [p for p in dict.fromkeys(people) if p.lower() not in ("@here", "@channel", "@everyone")]
        if not people:
            raise InvalidInput(f"Who? Usage: `{USAGE['invite']}`.")
        unknown = [p for p in people if p.startswith("@")] if self.people_by_id else []
        if unknown:
            raise InvalidInput(unknown_person(unknown[0]))
        out = self.service.record_invites(number, people, caller.user)
        return self._said(number, f"Inviting {len(people)} to incident {number}.", out, f"inviting {len(people)}.")

    @command("ask", usage="ask <text>", help="Ask the wider help channels for experience.", group="lead", may=RESPONDERS)
    def ask(self, args: str, caller: Caller) -> Reply:
        number, text = self._incident(args, caller, usage=USAGE["ask"])
        out = self.service.ask_for_help(number, text, caller.user)
        where = ", ".join("#" + c for c in self.service.settings.stakeholders.help_channels)
        return self._said(number, f"Asked for help in {where}.", out)

    @command("escalate", usage="escalate [team]", help="List the specialist teams that can be paged, or page one.", group="lead", may=RESPONDERS)
    def escalate(self, args: str, caller: Caller) -> Reply:
        number, team = self._incident(args, caller, usage=USAGE["escalate"])
        teams = [t for t in self.service.settings.specialists if t.reachable]
        unset = [t.name for t in self.service.settings.specialists if not t.reachable]
        setting = ("a bot admin sets slack_user, slack_group or pagerduty_routing_key of a team under "
                   "specialists: in the settings")
        if not team.strip():
            if not teams:
                return Reply("No specialist team can be paged: " + setting + ".")
            unreachable = (f"\nNot set up to be paged: {', '.join(unset)} ({setting})." if unset else "")
            return Reply(f"Specialist teams for incident {number} (page one with `escalate <team>`):\n" + "\n".join(
                f"• {t.key}: {t.name}" + (f" ({t.covers})" if t.covers else "") for t in teams) + unreachable,
                menu=number)
        key = team.strip().split()[0]
        out = self.service.page_specialist(number, key, caller.user)
        chosen = self.service.settings.specialist(key)
        how = [w for w, on in (("PagerDuty", chosen.pagerduty_routing_key),
                               (f"a direct message to {mention(chosen.slack_user)}", chosen.slack_user),
                               ("a mention of their Slack group", chosen.slack_group)) if on]
        drill = " (a drill: only to its participants)" if out.incident.drill else ""
        return self._said(number, f"Page to {chosen.name} queued{drill} ({', '.join(how)}); the result follows "
                                    f"here and on the timeline.", out)

    # More `rca` subcommands from adapters, {word: handler(number, rest, caller) -> Reply}; assign, never mutate.
    rca_subcommands: dict = {}

    @command("rca", usage="rca [ready|share|publish [--force]]", help="The root-cause analysis draft; `rca ready` when it is done, `rca share` to share it, `rca publish` to put it on Confluence.", group="lead", may=RESPONDERS)
    def rca(self, args: str, caller: Caller, document_url: str = "") -> Reply:
        number, word = self._incident(args, caller, usage=USAGE["rca"])
        document_url = document_url or self.document_url
        first, _, rest = word.strip().partition(" ")
        if first.lower() in self.rca_subcommands:  # e.g. `rca publish [--force]` (Confluence)
            return self.rca_subcommands[first.lower()](number, rest, caller)
        word = word.strip().lower()
        if word == "ready":
            out = self.service.mark_rca_ready(number, caller.user)
            if not out.changed:
                return self._said(number, f"The analysis of incident {number} was marked ready already; share it "
                                          f"with `rca share`.", out)
            return self._said(number, f"The analysis of incident {number} is ready; share it with `rca share`.", out,
                              f"the analysis is ready; share it with `rca {number} share`.")
        if word == "share":
            out = self.service.share_rca(number, caller.user)
            where = ", ".join("#" + c for c in self.service.settings.stakeholders.share_targets)
            again = out.happened[0].old
            if again:
                return self._said(number, f"Sharing the analysis of incident {number} again in {where}: it changed "
                                          f"since it was shared at {again}.", out,
                                  f"sharing the analysis again in {where}: it changed since it was shared at {again}.")
            return self._said(number, f"Sharing the analysis of incident {number} in {where}.", out,
                              f"sharing the analysis in {where}.")
        if word:
            raise InvalidInput(f"Usage: `{USAGE['rca']}`.")
        draft = f"The root-cause analysis draft of incident {number}: {views.document_url(document_url, number, '/rca.md')}"
        published = self.service.get(number).rca_url
        return Reply(f"{draft}\nPublished: {published}" if published else draft)


def _ref(channel: str) -> str:
    """A stakeholder channel as written in chat: a link for a Slack id, #name for a name."""
    return f"<#{channel}>" if channel[:1] in "CG" and channel[1:].isalnum() and channel.isupper() else f"#{channel}"
