"""What Slack does to a slash command's text when the command has "Escape channels, users, and links sent
to your app" on (`should_escape: true` in the manifest): a person typed as `@bob` arrives as `<@U123|bob>`,
a channel `#general` as `<#C123|general>`, a user group `@webops` as `<!subteam^S123|@webops>`, `@here` as
`<!here>`, a link as `<https://...>`. A name that is nobody's stays as typed. With escaping off, the text
arrives as typed (`@bob`), and the app cannot tell who is meant.
"""
from __future__ import annotations

import re

TOKEN = re.compile(r"(?<![\w<|/@#])([@#])([\w.\-]+)|(?<![\w<|])(https?://[^\s<>|]+)")
BROADCASTS = ("here", "channel", "everyone")


def escape_text(ws, text: str, person_id: str) -> str:
    """`text` as Slack sends it to an app whose command escapes: people, channels, groups, links."""
    def one(match: re.Match) -> str:
        if match.group(3):
            return f"<{match.group(3)}>"
        sigil, typed = match.group(1), match.group(2)
        name = typed.rstrip(".-")  # "@bob." : the full stop is not part of the name
        tail = typed[len(name):]
        found = _person(ws, name) if sigil == "@" else _channel(ws, name, person_id)
        return found + tail if found else match.group(0)
    return TOKEN.sub(one, text)


def _person(ws, name: str) -> str | None:
    if name.lower() in BROADCASTS:
        return f"<!{name.lower()}>"
    user = next((u for u in ws.users.values() if u.name == name and not u.deleted), None)
    if user is not None:
        return f"<@{user.id}|{user.name}>"
    group = next((g for g in ws.usergroups.values() if g["handle"] == name and not g.get("date_delete")), None)
    return f"<!subteam^{group['id']}|@{name}>" if group else None


def _channel(ws, name: str, person_id: str) -> str | None:
    """A channel the person can see: a public one, or a private one they are in."""
    conv = next((c for c in ws.channels.values() if not c.is_im and c.name == name
                 and (not c.is_private or person_id in c.members)), None)
    return f"<#{conv.id}|{conv.name}>" if conv else None
