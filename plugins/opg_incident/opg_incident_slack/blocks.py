"""Block Kit for opg-incident, built with slack_sdk.models and kept within Slack's limits.

User text (titles, summaries, impacts) always goes out as plain_text, so `<!channel>` never pings.
"""
from __future__ import annotations

import re

from slack_sdk.models.blocks import (
    ActionsBlock, ButtonElement, CheckboxesElement, ContextBlock, DatePickerElement, DividerBlock, HeaderBlock, InputBlock, Option,
    PlainTextInputElement, PlainTextObject, RadioButtonsElement, SectionBlock,
    UserSelectElement,
)
from slack_sdk.models.blocks.basic_components import MarkdownTextObject
from slack_sdk.models.views import View

from opg_incident_core.help import CRITERIA
from opg_incident_core.text import defuse, mention

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_LABEL = 75
MAX_INPUT = 3000
TRUNCATED = "… (shortened; the living document has it all)"

# action ids and callback ids: the one place they are spelled
CREATE_CHANNEL = "opg_create_comms_channel"
PAGE_ONCALL = "opg_page_oncall"
EDIT = "opg_edit_incident"
CLOSE = "opg_close_incident"
DECLARE_VIEW = "opg_declare"
EDIT_VIEW = "opg_edit"
HANDOVER_ACCEPT = "opg_handover_accept"
HANDOVER_DECLINE = "opg_handover_decline"
TAKE_ROLE = "opg_take_role"
PAGE_TEAM = "opg_page_team"
CLOSE_VIEW = "opg_close"
FIELDS = ("title", "live", "summary", "impact", "lead", "severity", "drill", "reason", "until")


def clip(text: str, limit: int) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def link_safe(url: str | None) -> bool:
    """A URL that can go inside Slack's <url|label> as it is."""
    return bool(url) and url.startswith(("https://", "http://")) and not any(c in url for c in "<>| \n")


def plain(text: str, limit: int = MAX_SECTION) -> PlainTextObject:
    return PlainTextObject(text=clip(text, limit) or " ", emoji=True)


def mrkdwn(text: str, limit: int = MAX_SECTION) -> MarkdownTextObject:
    return MarkdownTextObject(text=clip(text, limit) or " ")


# -- the declare / edit modal -----------------------------------------------------------------------
def incident_modal(settings, *, title: str = "", incident=None, metadata: str = "") -> dict:
    summary = ""
    if incident is None and len(title) > 300:  # a long /opg-incident text: the rest starts the summary
        cut = title.rfind(" ", 0, 300)
        cut = cut if cut > 100 else 300
        title, summary = title[:cut], title[cut:].strip()
    """The form behind /opg-incident (incident=None) and behind Edit (incident given, pre-filled)."""
    sev_options = [Option(value=s.key, label=clip(f"{s.emoji} {s.name}".strip(), MAX_LABEL),
                          description=clip(s.description, MAX_LABEL) or None)  # what each severity means
                   for s in settings.severities]
    live_options = [Option(value="live", label="Yes, this is a live incident happening now"),
                    Option(value="report", label="No, this is a report of something that happened")]
    current_sev = next((o for o in sev_options if incident and o.value == incident.severity), None)
    live_initial = live_options[1 if incident is not None and incident.report else 0]
    lead = incident.roles.get("lead") if incident else None
    blocks = [
        InputBlock(block_id="title", label="Title", element=PlainTextInputElement(
            action_id="value", initial_value=(incident.title if incident else title)[:300] or None,
            placeholder="What's happened, in a sentence?", max_length=300)),
        InputBlock(block_id="live", label="Is this a live incident?", element=RadioButtonsElement(
            action_id="value", options=live_options, initial_option=live_initial)),
        InputBlock(block_id="summary", label="Summary", optional=True, element=PlainTextInputElement(
            action_id="value", multiline=True, initial_value=clip(incident.summary if incident else summary,
                                                                     MAX_INPUT) or None,
            placeholder="Can you share any more details?")),
        InputBlock(block_id="impact", label="Impact", optional=True, hint="Think about affected people, "
                   "systems, and processes", element=PlainTextInputElement(
                       action_id="value", multiline=True, initial_value=clip(incident.impact, MAX_INPUT)
                       if incident and incident.impact else None,
                       placeholder="Who or what might be affected?")),
        InputBlock(block_id="lead", label="Lead", optional=True, element=UserSelectElement(
            action_id="value", initial_user=lead if lead and lead[:1] in "UW" else None,
            placeholder="Who leads the response?")),
        InputBlock(block_id="severity", label="Severity: how bad is it?", optional=True,
                   element=RadioButtonsElement(action_id="value", options=sev_options, initial_option=current_sev)),
    ]
    if incident is not None:
        blocks.pop(1)  # live or report is decided when declaring
    if incident is None:  # the process's test first: is it an incident?
        blocks.insert(0, SectionBlock(block_id="criteria", text=mrkdwn(
            "*Is it an incident?* Declare one when:\n" + "\n".join(f"• {c}" for c in CRITERIA))))
        blocks.append(InputBlock(block_id="drill", label="Drill", optional=True, element=CheckboxesElement(
            action_id="value", options=[Option(value="drill", label="This is a drill: practise, page nobody")])))
    view = View(
        type="modal", callback_id=EDIT_VIEW if incident else DECLARE_VIEW,
        title=f"Edit incident {incident.number}" if incident else "Declare an incident",
        submit="Save" if incident else "Declare", close="Cancel", blocks=blocks,
        private_metadata=metadata,
    )
    return view.to_dict()


def modal_values(view: dict) -> dict:
    """The submitted fields of the modal as text (None when left empty or not text)."""
    state = as_dict(as_dict(as_dict(view).get("state")).get("values"))
    out = {}
    for field in FIELDS:
        element = as_dict(as_dict(state.get(field)).get("value"))
        if "selected_option" in element:
            value = as_dict(element.get("selected_option")).get("value")
        elif "selected_options" in element:
            chosen = element.get("selected_options")
            value = ",".join(as_dict(o).get("value") or "" for o in chosen) if isinstance(chosen, list) else None
        elif "selected_user" in element:
            value = element.get("selected_user")
        elif "selected_date" in element:
            value = element.get("selected_date")
        else:
            value = element.get("value")
        out[field] = value if isinstance(value, str) and value else None
    return out


def as_dict(value) -> dict:
    """A payload field that should be an object, or {} (Slack payloads are read defensively)."""
    return value if isinstance(value, dict) else {}


# -- the headline -----------------------------------------------------------------------------------
PLAIN_TOKEN = re.compile(r"<([@#])([UWCG][A-Z0-9]{2,31})(?:\|([^<>|]*))?>|<(https?://[^<>|\s]+)(?:\|([^<>]*))?>")


def as_plain(text: str, names=None) -> str:
    """User text (as Slack sends it) for a plain_text field, which Slack shows as it is: a person by name
    (`names(user_id)`, else their id), a channel by its name, a link with its address, `&lt;` as `<`."""
    def token(m: re.Match) -> str:
        if m.group(4):
            return f"{m.group(5)} ({m.group(4)})" if m.group(5) and m.group(5) != m.group(4) else m.group(4)
        if m.group(1) == "#":
            return "#" + (m.group(3) or m.group(2))
        name = names(m.group(2)) if names else None
        return "@" + (name or m.group(3) or m.group(2))
    text = PLAIN_TOKEN.sub(token, text or "")
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def headline(incident, settings, document_url: str, pending=(), names=None) -> tuple[str, list]:
    """(fallback text, blocks) of the headline message in #opg-incidents; edited in place on change.
    `names(user_id)`: display names for the people mentioned in the plain-text fields (title, summary, impact)."""
    sev = settings.severity(incident.severity)
    status_emoji = {"Live": "🔥", "Reported": "📓", "Resolved": "💧"}[incident.status_text]
    label = " (drill)" if incident.drill else ""
    people = [f"🙋 Reporter: {mention(incident.reporter)}"]
    for role in settings.assignable_roles:
        people.append(f"{role.name}: {mention(incident.roles[role.key]) if role.key in incident.roles else '-'}")
    for handover in pending:
        role = settings.role(handover.role)
        people.append(f"🤝 {role.name if role else handover.role} offered to {mention(handover.to_user)}, "
                      f"waiting for {mention(handover.awaiting)}")
    facts = [
        f"{status_emoji} Status: *{incident.status_text}*",
        f"{sev.emoji if sev else '☁️'} Severity: *{sev.name if sev else '-'}*",
        f"📄 Document: <{document_url}|Incident {incident.number}>",
    ]
    if incident.channel_id:
        facts.append(f"🗣 Comms channel: <#{incident.channel_id}>")
    if incident.call_url:
        facts.append(f"📞 Call: <{incident.call_url}>")
    if link_safe(getattr(incident, "rca_url", None)):
        facts.append(f"📖 Root-cause analysis: <{incident.rca_url}|in Confluence>")
    blocks = [
        HeaderBlock(text=plain(f"Incident {incident.number}{label}: {as_plain(incident.title, names)}", MAX_HEADER)),
        SectionBlock(text=mrkdwn("\n".join(people))),
        SectionBlock(text=mrkdwn("\n".join(facts))),
        SectionBlock(text=plain(f"Summary: {as_plain(incident.summary, names) or 'not set yet'}")),
        SectionBlock(text=plain(f"Impact: {as_plain(incident.impact, names) or 'not set yet'}")),
    ]
    if incident.is_open:
        buttons = []
        if not incident.channel_id and not incident.report:
            buttons.append(ButtonElement(text="🗣 Create comms channel", action_id=CREATE_CHANNEL,
                                         value=str(incident.number), style="primary"))
        buttons += [
            ButtonElement(text="📟 Page on-call lead", action_id=PAGE_ONCALL, value=str(incident.number)),
            ButtonElement(text="✏️ Edit", action_id=EDIT, value=str(incident.number)),
            # Opens the pre-close check (close_modal): what is missing, and the reason to stop.
            ButtonElement(text="✅ Close", action_id=CLOSE, value=str(incident.number), style="danger"),
        ]
        blocks += [DividerBlock(), ActionsBlock(block_id="headline_actions", elements=buttons)]
    else:
        reason = getattr(incident, "close_reason", None)
        blocks.append(ContextBlock(elements=[mrkdwn(f"This incident is closed ({defuse(reason)}). Thank you all."
                                                    if reason else "This incident is closed. Thank you all.")]))
    fallback = f"Incident {incident.number}{label}: {defuse(incident.title)} reported by {mention(incident.reporter)}"
    return clip(fallback, 3000), [b.to_dict() for b in blocks[:MAX_BLOCKS]]


def text_message(text: str) -> list:
    """A section of mrkdwn text (already safe), for announcements."""
    return [SectionBlock(text=mrkdwn(text)).to_dict()]


def handover(text: str, handover_id: int) -> list:
    """A handover waiting for its answer, with Accept and Decline (the text fallback is `accept` / `decline`)."""
    return [SectionBlock(text=mrkdwn(text)).to_dict(),
            ActionsBlock(block_id=f"handover_{handover_id}", elements=[
                ButtonElement(text="Accept", action_id=HANDOVER_ACCEPT, value=str(handover_id), style="primary"),
                ButtonElement(text="Decline", action_id=HANDOVER_DECLINE, value=str(handover_id)),
            ]).to_dict()]


def reminder(text: str, number: int, role_key: str | None, role_name: str | None) -> list:
    body = [SectionBlock(text=mrkdwn(text)).to_dict()]
    if role_key:
        body.append(ActionsBlock(block_id=f"take_{number}_{role_key}", elements=[
            ButtonElement(text=clip(f"Take this role: {role_name}", MAX_LABEL), action_id=TAKE_ROLE,
                          value=f"{number}:{role_key}")]).to_dict())
    return body


def escalation_menu(number: int, teams) -> tuple[str, list]:
    """The specialist teams that can be paged, and a Page button for each: one actions block per team, since an
    action_id must be unique within its block (Slack refuses the message otherwise); 25 teams at most, within
    50 blocks. The teams nothing is set up to reach are named, with the setting."""
    unset = [t.name for t in teams if not t.reachable]
    teams = [t for t in teams if t.reachable][:25]
    text = f"Specialist teams for incident {number}:\n" + "\n".join(
        f"• *{t.name}* (`{t.key}`)" + (f": {t.covers}" if t.covers else "") for t in teams)
    if unset:
        text += (f"\nNot set up to be paged: {', '.join(unset)} (slack_user, slack_group or "
                 f"pagerduty_routing_key under specialists: in the settings).")
    body = [SectionBlock(text=mrkdwn(text)).to_dict()] + [
        ActionsBlock(block_id=f"escalate_{number}_{i}", elements=[
            ButtonElement(text=clip(f"Page {t.name}", MAX_LABEL), action_id=PAGE_TEAM, value=f"{number}:{t.key}")
        ]).to_dict() for i, t in enumerate(teams)]
    fallback = f"Specialist teams for incident {number}: " + ", ".join(f"{t.key} ({t.name})" for t in teams)
    return fallback, body


# -- the pre-close check ----------------------------------------------------------------------------
def close_modal(number: int, title: str, missing: list[str], metadata: str) -> dict:
    """Behind the headline's Close button: what is missing, and the process's two reasons to stop."""
    check = ("*Missing:*\n" + "\n".join(f"• {m}" for m in missing) + "\nClose it anyway?") if missing else \
        "Nothing is missing: the summary, the impact and the scribe are set, and no action is open."
    reasons = [Option(value="resolved", label="Resolved", description="The service is restored"),
               Option(value="blocked", label="Blocked until a later date",
                      description="Stop for now; pick up on the date below")]
    view = View(type="modal", callback_id=CLOSE_VIEW, title=clip(f"Close incident {number}", 24), submit="Close it",
                close="Not yet", private_metadata=metadata, blocks=[
                    SectionBlock(block_id="question", text=plain(f"Close incident {number}: {title}?")),
                    SectionBlock(block_id="check", text=mrkdwn(check)),
                    InputBlock(block_id="reason", label="Why stop now?", element=RadioButtonsElement(
                        action_id="value", options=reasons, initial_option=reasons[0])),
                    InputBlock(block_id="until", label="Blocked until", optional=True,
                               hint="Only when blocked: the date to pick it up again", element=DatePickerElement(
                                   action_id="value")),
                ])
    return view.to_dict()
