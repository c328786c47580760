"""Reading Slack's payloads defensively: a field of the wrong type reads as empty (as_dict lives with the
Block Kit builders, which read modal state the same way)."""
from __future__ import annotations

import json

from .blocks import as_dict

__all__ = ["as_dict", "as_list", "as_text", "private_metadata"]


def as_text(value) -> str:
    return value if isinstance(value, str) else ""


def as_list(value) -> list:
    return value if isinstance(value, list) else []


def private_metadata(raw) -> dict:
    """A modal's `private_metadata` (JSON we wrote when opening it), or {}."""
    try:
        value = json.loads(raw if isinstance(raw, str) and raw else "{}")
        return value if isinstance(value, dict) else {}
    except ValueError:
        return {}
