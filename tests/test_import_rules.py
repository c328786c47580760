"""The import rules of the design (issue 11): the core imports no adapter, errbot, slack_sdk, Flask or
requests; the web pages import nothing of Slack; the backend imports nothing of the plugin; adapters do not
import each other's insides except where listed. Read from the source (every import statement, at any depth),
so a lazy import inside a function counts too."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "plugins" / "opg_incident"
PLUGIN_PACKAGES = ("opg_incident_core", "opg_incident_slack", "opg_incident_web", "opg_incident_confluence",
                   "opg_incident", "opg_incident_logs")

RULES = {
    # package (folder or module): top-level names it must never import
    PLUGIN / "opg_incident_core": ("errbot", "slack_sdk", "slackv3", "flask", "werkzeug", "requests", "waitress",
                                   "prometheus_client", "atlassian", "opg_incident_slack", "opg_incident_web",
                                   "opg_incident_confluence", "opg_incident", "opg_slack"),
    PLUGIN / "opg_incident_web": ("slack_sdk", "slackv3", "opg_incident_slack", "opg_slack", "errbot"),
    PLUGIN / "opg_incident_confluence": ("slack_sdk", "slackv3", "opg_incident_slack", "opg_slack", "errbot"),
    PLUGIN / "opg_incident_slack": ("opg_slack", "errbot", "flask"),
    ROOT / "backends" / "opg_slack": PLUGIN_PACKAGES,
}


# Known exceptions, each with its reason: the generic outbox worker still lives in the Slack adapter, and the
# Confluence adapter runs it on the Text console (to move to a neutral package).
ALLOWED = {PLUGIN / "opg_incident_confluence": ("opg_incident_slack.outbox_worker",)}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def imported(path: Path, allowed=()) -> set[str]:
    """The top-level names of every module `path` imports (but those allowed)."""
    return {name.split(".")[0] for name in imported_modules(path) if name not in allowed}


def files(where: Path) -> list[Path]:
    return sorted(where.rglob("*.py")) if where.is_dir() else [where]


@pytest.mark.parametrize("where", list(RULES), ids=lambda p: str(p.relative_to(ROOT)))
def test_import_rules(where):
    forbidden = set(RULES[where])
    broken = {str(f.relative_to(ROOT)): sorted(imported(f, ALLOWED.get(where, ())) & forbidden)
              for f in files(where)}
    assert not {f: names for f, names in broken.items() if names}
    assert files(where), f"{where} has no Python files: the rule checks nothing"


def test_the_rule_checker_sees_a_broken_rule(tmp_path):
    """The checker itself: a lazy import inside a function is found."""
    module = tmp_path / "bad.py"
    module.write_text("def later():\n    from slack_sdk import WebClient\n    import errbot.core\n")
    assert imported(module) == {"slack_sdk", "errbot"}
