"""The outbox kinds Slack sends, each declared once where its sender is written (as monzo/response's
`@action_handler`):

    @KINDS.job("react", what="add a reaction")
    def _react(self, item): ...

    @KINDS.announcement("closed", what="announce the end of the incident")
    def _announce_end(self, inc, happened, item): ...

A sender is a method of Effects. A kind declares what it does in people's words (said when it is given up),
and may declare how long its first step waits (`wait(effects, item)`: the pace rules of headline edits and
of answers live with their senders, nowhere else)."""
from __future__ import annotations

import dataclasses
from typing import Callable

from opg_incident_core.views import Happened

HAPPENED_FIELDS = tuple(f.name for f in dataclasses.fields(Happened))


@dataclasses.dataclass(frozen=True)
class Kind:
    name: str
    plan: Callable  # (effects, item) -> the steps, callables run one after another
    what: str | None = None  # "I could not <what>"
    wait: Callable | None = None  # (effects, item) -> seconds before its first step
    announces: bool = False  # an announcement of what happened (its Happened is the payload)
    source: str = ""  # where it is written (module.function)


class OutboxKinds:
    def __init__(self) -> None:
        self._kinds: dict[str, Kind] = {}

    def add(self, name: str, plan: Callable, *, what: str | None = None, wait: Callable | None = None,
            announces: bool = False, source: str = "") -> None:
        """Declare a kind (the decorators do). Declared again from where it was (a module reloaded): replaced."""
        known = self._kinds.get(name)
        if known is not None and (not source or known.source != source):
            raise ValueError(f"outbox kind {name!r} is declared twice ({known.source or '?'}, {source or '?'})")
        self._kinds[name] = Kind(name, plan, what, wait, announces, source)

    def __setitem__(self, name: str, plan: Callable) -> None:
        """Another adapter's kind run by the Slack worker: `plan(effects, item, payload)` gives its steps."""
        self._kinds[name] = Kind(name, lambda effects, item: plan(effects, item, item.payload))

    # -- the decorators ----------------------------------------------------------------------------------
    def job(self, *names: str, what: str, wait: Callable | None = None):
        """`method(self, item)`: the kind's one step."""
        def declare(method):
            for name in names:
                self.add(name, lambda effects, item: [lambda: method(effects, item)], what=what, wait=wait,
                         source=_source(method))
            return method
        return declare

    def steps(self, *names: str, what: str):
        """`method(self, item) -> [step, ...]`: a kind of several steps (a crash resumes at the one it was at)."""
        def declare(method):
            for name in names:
                self.add(name, method, what=what, source=_source(method))
            return method
        return declare

    def announcement(self, *names: str, what: str | None = None):
        """`method(self, inc, happened, item)`: tells Slack that something of kind `names` happened to `inc`
        (the incident as it is when the step runs)."""
        def declare(method):
            def plan(effects, item):
                happened = Happened(**{k: item.payload.get(k) for k in HAPPENED_FIELDS})
                return [lambda: method(effects, effects.service.get(item.number), happened, item)]
            for name in names:
                self.add(name, plan, what=what, announces=True, source=_source(method))
            return method
        return declare

    # -- asked by Effects and the worker -------------------------------------------------------------------
    def plan(self, effects, item) -> list:
        kind = self._kinds.get(item.kind)
        return kind.plan(effects, item) if kind else []

    def wait(self, effects, item) -> float:
        kind = self._kinds.get(item.kind)
        return kind.wait(effects, item) if kind and kind.wait else 0.0

    def what(self, name: str) -> str | None:
        kind = self._kinds.get(name)
        return kind.what if kind else None

    def announced(self) -> frozenset[str]:
        """The kinds of Happened that have an announcement."""
        return frozenset(k.name for k in self._kinds.values() if k.announces)

    def __contains__(self, name: str) -> bool:
        return name in self._kinds


def _source(method) -> str:
    return f"{method.__module__}.{method.__qualname__}"


KINDS = OutboxKinds()
