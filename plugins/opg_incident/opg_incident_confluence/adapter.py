"""`rca publish [--force]` and its outbox job, in Slack (the Slack worker runs it, as one of its outbox kinds:
opg_incident_slack/kinds.py) and on the Text console (a worker of its own, see `start`). The command checks
and queues; the job publishes, then tells the person who asked, in plain words, how it went."""
from __future__ import annotations

import logging

from opg_incident_core.chat_base import Caller, Reply
from opg_incident_core.errors import IncidentError, InvalidInput, OutsideError
from opg_incident_core.text import defuse

from . import store
from .client import ConfluenceClient, ConfluenceError
from .publisher import Publisher

log = logging.getLogger(__name__)
KIND = "confluence_publish"
USAGE = "rca publish [--force]"


class ConfluenceAdapter:
    def __init__(self, service, settings, config, *, effects=None, send=None, client_factory=ConfluenceClient):
        """`effects`: the Slack effects (None on the Text console); `send(user, text)`: a message to a
        person on the Text console."""
        self.service = service
        names = getattr(getattr(effects, "slack", None), "user_name", None)  # people by name, not by Slack id
        self.publisher = Publisher(service, settings, config, client_factory, names=names)
        self.effects = effects
        self.send = send
        self.worker = None

    # -- the command --------------------------------------------------------------------------------
    def command(self, number: int, rest: str, caller: Caller) -> Reply:
        words = [w.lower() for w in (rest or "").split()]
        if any(w != "--force" for w in words):
            raise InvalidInput(f"Usage: `{USAGE}`.")
        force = bool(words)
        target = self.publisher.target()
        if target.missing():
            raise InvalidInput("Confluence is not set up, so the analysis stays a draft (`rca`). A bot admin sets "
                               + "; ".join(target.missing()) + ". See the README, “Publishing to Confluence”.")
        inc = self.service.get(number)
        if inc.is_open:
            raise InvalidInput(f"Incident {number} is still open: publish its analysis once it is closed.")
        lead, scribe = inc.roles.get("lead"), inc.roles.get("scribe")
        self.service.authority.require(caller.user, [("the Incident Lead", lead), ("the Incident Scribe", scribe)],
                                       f"publish the analysis of incident {number}")
        self.service.enqueue_job(KIND, number, {"by": caller.user, "channel": caller.channel, "force": force})
        self.wake()
        return Reply(f"Publishing the root-cause analysis of incident {number} to Confluence (space {target.space})"
                     + (", over any changes made there" if force else "") + "; I will say when it is there.")

    # -- the job ------------------------------------------------------------------------------------
    def plan(self, item) -> list:
        """The steps of an outbox item: publish, then say where it is."""
        if item.kind != KIND:  # the Text console runs only this kind; anything else waits for a Slack worker
            def elsewhere():
                raise OutsideError(f"{item.kind} needs the Slack adapter", transient=True, retry_after=600)
            return [elsewhere]
        p = item.payload
        return [lambda: self._publish(item, p), lambda: self._announce(item, p)]

    def _publish(self, item, p) -> None:
        number = item.number
        try:
            self.publisher.publish(number, p.get("by", ""), force=bool(p.get("force")), job_id=item.id)
        except ConfluenceError as exc:
            if exc.transient:
                if item.attempts == 1:  # said once; the outbox keeps trying
                    self._tell(p, f"⏳ Incident {number}: {exc} I will keep trying; the analysis goes up as soon "
                                  "as Confluence lets me.")
                raise
            self._tell(p, f"⚠️ The analysis of incident {number} was not published. {exc}")
            raise IncidentError(f"not published: {exc.code}") from None  # the job ends here

    def _announce(self, item, p) -> None:
        row = store.of(item.number)
        if row is None or row.job_id != item.id or row.state != "published":
            return  # this job did not publish (it told why)
        self._tell(p, f"📖 The root-cause analysis of incident {item.number} is in Confluence (version "
                      f"{row.version}): {row.url}", public=True)

    def _tell(self, p: dict, text: str, public: bool = False) -> None:
        user, channel = p.get("by", ""), p.get("channel")
        if self.effects is None:
            if self.send is not None:
                self.send(user, text)
            return
        text = defuse(text)
        if public and channel:
            self.effects.slack.post(channel, text)
        else:
            self.effects.tell(user, channel, text)

    # -- running it ---------------------------------------------------------------------------------
    def register(self, kinds) -> None:
        """In Slack: the Slack worker runs the job, one of its outbox kinds (opg_incident_slack.kinds.KINDS)."""
        kinds[KIND] = lambda effects, item, payload: self.plan(item)

    def start(self, **options) -> None:
        """On the Text console: a worker of our own (there is no Slack one)."""
        from opg_incident_slack.outbox_worker import OutboxWorker

        self.worker = OutboxWorker(self, **options)
        self.worker.start()

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()
        elif self.effects is not None:
            self.effects.wake()

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop()
