"""Answers to chat commands, posted by the bot itself through the outbox (not errbot's Markdown converter):
at Slack's pace (about one message a second per channel), merged when they pile up, a ✅ where that says
enough. Nothing is lost: every command's answer is a ✅ on its message or part of a message, whose metadata
names the messages it answers (`acks`).

A command's answer is an entry of an "ack" outbox item, one item per channel gathering the entries that arrive
while it waits (outbox.enqueue(gather=...)); it waits INTERVAL after the last one of its channel (every
replica's: outbox.last_done) and for the gateway's own pace.
"""
from __future__ import annotations

import re

from opg_incident_core import outbox, storage

ACK_KIND = "ack"
REACTION = "white_check_mark"
# Commands whose answer only confirms what the person said, when they say it in the incident's channel
# (close, reopen, archive: their announcement there says it). Others answer with what they did (`action`
# gives the action's number, and how to mark it done).
ACK_ONLY = frozenset({"note", "decision", "close", "reopen", "archive"})
LABELS = {"note": ("note", "notes"), "decision": ("decision", "decisions"), "action": ("action", "actions"),
          "action done": ("action done", "actions done"), "summary": ("summary", "summaries"),
          "impact": ("impact", "impacts"), "sev": ("severity", "severities")}
MAX_REACTS = 3     # more answers at once than this: one message says them
REACT_BUDGET = 20  # ✅ a minute from this process: Slack allows 50 for the workspace (room for another replica)
MAX_TEXT = 3500    # characters of one message (Slack takes 40,000; people read less)
INTERVAL = 1.0     # seconds between two answer messages in a channel
TOKEN = re.compile(r"<(\u200b?)([^<>\n]*)>")
LIVE = re.compile(r"^(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+|!subteam\^S[A-Z0-9]+)(?:\|[^|]*)?$"
                  r"|^(?:https?://|mailto:)[^|\s]+(?:\|[^|]*)?$")
DEFUSED_LIVE = re.compile(r"^(?:@[UW][A-Z0-9]+|#[CG][A-Z0-9]+)(?:\|[^|]*)?$")
ENTITY = re.compile(r"&(?!(?:amp|lt|gt);)")


def for_slack(text: str) -> str:
    """A chat answer as Slack's mrkdwn: `&`, `<`, `>` escaped, except Slack's own tokens (mentions, channel
    links, user groups, links). A person mentioned in what someone wrote (defuse() marks it) stays a mention;
    `<!channel>`, `<!here>` and the like are shown, never announced."""
    out, at = [], 0
    for match in TOKEN.finditer(text):
        out.append(_escape(text[at:match.start()]))
        defused, body = match.group(1), match.group(2)
        if (LIVE if not defused else DEFUSED_LIVE).match(body):
            out.append(f"<{body}>")
        else:
            out.append("&lt;" + defused + _escape(body) + "&gt;")
        at = match.end()
    out.append(_escape(text[at:]))
    return "".join(out)


def _escape(text: str) -> str:
    return ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")


def chunks(parts: list[tuple[str, list]], limit: int = MAX_TEXT) -> list[tuple[str, list]]:
    """(text, acks) parts joined into messages of at most `limit` characters; a longer part is split at lines."""
    out: list[tuple[str, list]] = []
    for text, acks in parts:
        for piece in _split(text, limit):
            if out and len(out[-1][0]) + 2 + len(piece) <= limit:
                out[-1] = (out[-1][0] + "\n\n" + piece, out[-1][1] + acks)
            else:
                out.append((piece, list(acks)))
            acks = []  # a part split in pieces: the first carries its acks
    return out


def _split(text: str, limit: int) -> list[str]:
    pieces, current = [], ""
    for line in text.split("\n"):
        while len(line) > limit:
            if current:
                pieces.append(current)
                current = ""
            cut = line.rfind(" ", 0, limit)
            cut = cut if cut > limit // 2 else limit
            pieces.append(line[:cut])
            line = line[cut:].lstrip(" ")
        current = f"{current}\n{line}" if current else line
        if len(current) > limit:
            head, _, current = current.rpartition("\n")
            pieces.append(head)
    if current or not pieces:
        pieces.append(current)
    return pieces


class Replies:
    """Part of Effects (slack, service, settings)."""

    def reply(self, channel: str, user: str, what: str, text: str, *, ts: str | None = None,
              thread_ts: str | None = None, react: bool = False) -> None:
        """Queue the answer to a command said in `channel` (message `ts`): a ✅ on it when `react`, else `text`."""
        entry = {"ts": ts, "thread_ts": thread_ts, "user": user, "what": what, "text": text or "",
                 "react": bool(react and ts)}
        if not entry["react"] and not entry["text"].strip():
            return
        with storage.write():
            outbox.enqueue(ACK_KIND, None, {"channel": channel, "entries": [entry]}, now=self.service.now(),
                           coalesce_key=f"{ACK_KIND}:{channel}", gather="entries")
        self.wake()

    def acks_wait(self, item) -> float:
        """Seconds the answers of `item` should wait: INTERVAL after the last ones of their channel, and our pace."""
        channel = item.payload.get("channel") or ""
        last = outbox.last_done(f"{ACK_KIND}:{channel}")
        since = (self.service.now() - last).total_seconds() if last else INTERVAL
        pace = getattr(self.slack, "pace", None)
        return max(INTERVAL - since, pace.post_wait(channel) if pace else 0.0, 0.0)

    def send_acks(self, item) -> None:
        channel = item.payload.get("channel") or ""
        threads: dict = {}
        for entry in item.payload.get("entries") or []:
            threads.setdefault(entry.get("thread_ts"), []).append(entry)
        inc = self.service.for_channel(channel)
        if inc is not None and not self.channel_usable(inc):  # archived meanwhile: to each person instead
            for entry in (e for group in threads.values() for e in group if not e.get("react")):
                self._best(self.slack.dm, entry["user"], for_slack(entry["text"]))
            return
        for thread_ts, group in threads.items():
            reacts = [e for e in group if e.get("react")]
            texts = [(for_slack(e["text"]), [e["ts"]] if e.get("ts") else []) for e in group if not e.get("react")]
            pace = getattr(self.slack, "pace", None)
            if len(reacts) <= MAX_REACTS and (pace is None or pace.used("reactions.add") + len(reacts) <= REACT_BUDGET):
                for entry in reacts:
                    self.slack.react(channel, entry["ts"], REACTION)
                reacts = []
            if reacts:
                texts.append(self._done_line(reacts))
            for text, acks in chunks(texts):
                self.slack.post(channel, text, thread_ts=thread_ts, meta={"acks": acks})

    def _done_line(self, entries: list) -> tuple[str, list]:
        counts: dict = {}
        for entry in entries:
            counts[entry.get("what")] = counts.get(entry.get("what"), 0) + 1
        said = ", ".join(f"{n} {LABELS.get(what, (what, what))[n != 1]}" for what, n in counts.items())
        people = list(dict.fromkeys(e.get("user") for e in entries if e.get("user")))
        names = [self.slack.user_name(u) if hasattr(self.slack, "user_name") else u for u in people]
        by = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
        return (f"✅ Done: {said}" + (f", from {for_slack(by)}" if by else "") + ". The timeline has them all.",
                [e["ts"] for e in entries if e.get("ts")])
