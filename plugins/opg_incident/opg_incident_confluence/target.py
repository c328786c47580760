"""Where to publish: the site, account and space from the environment (via config.py), the rest from the
settings YAML (`confluence:`). CONFLUENCE_SPACE overrides the YAML's space."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from opg_incident_web import present

MAX_TITLE = 255  # Confluence's limit for a page title


@dataclass(frozen=True)
class Target:
    url: str
    user: str
    token: str = field(repr=False)  # never in logs
    space: str
    parent: str
    title_pattern: str
    labels: tuple[str, ...]

    @classmethod
    def of(cls, settings, config) -> "Target":
        conf = settings.confluence
        value = lambda name: str(getattr(config, name, "") or "").strip()  # noqa: E731
        url = value("CONFLUENCE_URL").rstrip("/")
        parts = urlsplit(url)
        if (parts.hostname or "").endswith(".atlassian.net") and not parts.path.startswith("/wiki"):
            url += "/wiki"  # Confluence Cloud lives under /wiki
        return cls(url=url, user=value("CONFLUENCE_USER"), token=value("CONFLUENCE_TOKEN"),
                   space=value("CONFLUENCE_SPACE") or conf.space, parent=conf.parent.strip(),
                   title_pattern=conf.title_pattern, labels=tuple(conf.labels))

    def missing(self) -> list[str]:
        """What is still to set, in words a bot admin can act on."""
        out = []
        if not self.url.startswith(("https://", "http://")):
            out.append("CONFLUENCE_URL (the site, e.g. https://<site>.atlassian.net/wiki)")
        if not self.token:
            out.append("CONFLUENCE_TOKEN (an Atlassian API token, with CONFLUENCE_USER set to its account's e-mail; "
                       "or a Data Center personal access token)")
        if not self.space:
            out.append("CONFLUENCE_SPACE or confluence.space in the settings (a space key such as OPG)")
        return out

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc or self.url

    def title_for(self, inc, zone=dt.timezone.utc) -> str:
        declared = present.local(inc.declared_at, zone)
        title = " ".join(present.slack_text(inc.title).split())
        text = self.title_pattern.format(number=inc.number, title=title,
                                         date=declared.strftime("%Y-%m-%d") if declared else "")
        return text if len(text) <= MAX_TITLE else text[: MAX_TITLE - 1] + "…"
