"""Regenerate methods.json, the Web API contract the fake checks calls against (not imported by tests).

    python tests/fake_slack/make_methods.py OPENAPI_JSON SLACK_API_REF_GIT_DIR > tests/fake_slack/methods.json

Sources, merged per method:
  * Slack's OpenAPI 2 spec (slackapi/slack-api-specs web-api/slack_web_openapi_v2.json, copy in
    ../shared/slack-reference/specs): every argument and its type.
  * docs.slack.dev's method pages as JSON (slack-ruby/slack-api-ref docs.slack.dev/methods/<m>.json):
    arguments added since the spec (2021) such as `metadata` or `include_all_metadata`, which are
    required, the ID subtype of an argument (channel, user, timestamp), bot and user scopes, the rate
    tier, whether a JSON body is read, and the method's error names. Where both give a type, the docs win.
"""
from __future__ import annotations

import json
import subprocess
import sys

METHODS = """auth.test apps.connections.open users.info users.list users.lookupByEmail team.info bots.info
conversations.info conversations.list conversations.members conversations.create conversations.invite
conversations.join conversations.leave conversations.setTopic conversations.setPurpose conversations.archive
conversations.unarchive conversations.rename conversations.open conversations.history conversations.replies
chat.postMessage chat.postEphemeral chat.update chat.delete chat.getPermalink reactions.add reactions.remove
reactions.get pins.add pins.remove pins.list files.getUploadURLExternal files.completeUploadExternal views.open
views.push views.update views.publish usergroups.users.list bookmarks.add bookmarks.edit bookmarks.list
bookmarks.remove""".split()
# Arguments that carry JSON: a JSON string in a form, a native array/object in a JSON body.
JSON_ARGS = {"blocks", "attachments", "metadata", "view", "files", "unfurled_attachments", "file_ids"}
TYPES = {"boolean": "boolean", "number": "number", "integer": "number", "array": "json", "string": "string"}


def docs_page(git_dir: str, method: str) -> dict:
    try:
        raw = subprocess.check_output(["git", "-C", git_dir, "show", f"HEAD:docs.slack.dev/methods/{method}.json"],
                                      stderr=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        return {}
    return json.loads(raw)


def merge(method: str, openapi: dict, docs: dict) -> dict:
    path = openapi["paths"].get("/" + method, {})
    op = path.get("post") or path.get("get") or {}
    args: dict = {}
    for param in op.get("parameters", []):
        if param["name"] != "token":
            args[param["name"]] = {"type": param.get("type", "string")}
    props = (docs.get("args") or {}).get("properties", {})
    for name, prop in props.items():
        if name == "token":
            continue
        entry = args.setdefault(name, {"type": "string"})
        if prop.get("type"):
            entry["type"] = prop["type"]
        if prop.get("subtype"):
            entry["subtype"] = prop["subtype"]
    for name, entry in args.items():
        if name in JSON_ARGS:
            entry["type"] = "json"
        elif name in props and not props[name].get("type") and entry["type"] == "string":
            entry["type"] = "scalar"  # the docs give no type: any string, number or boolean
        else:
            entry["type"] = TYPES.get(entry["type"], "scalar")
    required = [a for a in (docs.get("args") or {}).get("required", []) if a != "token"]
    if not docs:
        required = [p["name"] for p in op.get("parameters", []) if p.get("required") and p["name"] != "token"]
    scope = docs.get("scope") or {}
    return {"args": args, "required": required, "bot_scopes": scope.get("bot", []),
            "user_scopes": scope.get("user", []), "tier": docs.get("rate_limits"),
            "json": bool(docs.get("json_input_supported")), "errors": sorted(docs.get("errors") or {}),
            "sources": [s for s, ok in (("openapi", bool(op)), ("docs.slack.dev", bool(docs))) if ok]}


def main(openapi_path: str, git_dir: str) -> None:
    with open(openapi_path) as f:
        openapi = json.load(f)
    commit = subprocess.check_output(["git", "-C", git_dir, "rev-parse", "HEAD"], text=True).strip()
    out = {"_meta": {"generated_by": "tests/fake_slack/make_methods.py",
                     "openapi": "slackapi/slack-api-specs web-api/slack_web_openapi_v2.json "
                                f"(info.version {openapi['info'].get('version')})",
                     "docs": f"slack-ruby/slack-api-ref docs.slack.dev/methods/*.json @ {commit[:12]}"},
           "methods": {m: merge(m, openapi, docs_page(git_dir, m)) for m in METHODS}}
    json.dump(out, sys.stdout, indent=0, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(*sys.argv[1:3])
