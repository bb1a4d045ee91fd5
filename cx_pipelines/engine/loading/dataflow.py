"""Dataflow check: nothing on an event's path reads a value before it is set.

For every event the engine's order is walked as the evaluators run it: segments, test
group, the event's processes in order (each test group's mechanisms of a
``by_test_group`` process, and the mechanisms a tree leaf calls right after the tree),
then categories and account actions. It is an error (naming the file and line of the
expression) when

* a derived attribute is read and no mechanism earlier on that path writes it (it would
  silently be null: a process order mistake, or a mechanism the event does not run);
* ``segment`` or ``test_group`` is read in a segment condition (they are set after the
  segments), or ``category`` is read by a mechanism or a category rule (it is set after
  the processes, in the categories step).

Treatments, policies and arbitration are shared by every event and read after
everything; they are not checked here. Mixed into the loader's compiler.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import Location, StrategyValidationError

READABLE = {
    "segment": "from the processes on (not in segment conditions)",
    "test_group": "from the processes on (not in segment conditions)",
    "category": "in account actions and treatments (it is set after the processes)",
}


def reads(item: Any, skip: Any = None) -> Iterator[tuple[str, Location | None]]:
    """Every attribute an object of the compiled model reads, with where it is read.

    Walks dataclass fields, lists and dicts; an expression reads its attributes (placed
    at the expression), an attribute field reads itself (placed by the caller).
    """
    if item is None or item is skip:
        return
    if isinstance(item, m.Expression):
        for name in sorted(item.compiled.attributes):
            yield name, item.compiled.location
    elif isinstance(item, m.Attribute):
        yield item.name, None
    elif dataclasses.is_dataclass(item) and not isinstance(item, type):
        for entry in dataclasses.fields(item):
            yield from reads(getattr(item, entry.name), skip)
    elif isinstance(item, list | tuple):
        for element in item:
            yield from reads(element, skip)
    elif isinstance(item, dict):
        for element in item.values():
            yield from reads(element, skip)


class DataflowChecks:
    """Read-before-write of derived attributes and of segment / test_group / category."""

    def dataflow(
        self,
        events: dict[str, m.Event],
        segments: list[m.Segment],
        processes: dict[str, m.Process],
        mechanisms: dict[str, m.Mechanism],
        categories: list[m.CategoryRule],
        actions: list[m.AccountAction],
    ) -> None:
        self.reported: set[tuple] = set()
        for index, segment in enumerate(segments):
            for name, where in reads(segment.condition):
                if name in ("segment", "test_group", "category") or self._derived(name):
                    self._flow_error(
                        f"the segment condition reads {name!r}, which is not set yet: "
                        + self._not_yet(name, "segments are decided before any process runs"),
                        where,
                        ("segments", index, "when"),
                        name,
                    )
        for event in events.values():
            written: set[str] = set()
            for process_name in event.processes:
                process = processes.get(process_name)
                if process is None:
                    continue
                sequences = (
                    [process.mechanisms]
                    if process.by_test_group is None
                    else list(process.by_test_group.values())
                )
                after = set(written)
                for sequence in sequences:
                    seen = set(written)
                    for name in sequence:
                        self._mechanism(event, name, mechanisms, seen)
                    after |= seen
                written = after
            if not event.categorize or not categories:
                continue
            for index, rule in enumerate(categories):
                for name, where in reads(rule.condition):
                    self._read(
                        event,
                        name,
                        where,
                        ("categories", "rules", index),
                        written,
                        "a category rule",
                    )
            for index, action in enumerate(actions):
                calculated = [calculation.value for calculation in action.calculations]
                for name, where in reads([action.condition, *calculated]):
                    if name != "category":
                        self._read(
                            event,
                            name,
                            where,
                            ("categories", "account_actions", index),
                            written,
                            "an account action",
                        )

    def _derived(self, name: str) -> bool:
        attribute = self.attributes.get(name)
        return attribute is not None and attribute.derived

    def _not_yet(self, name: str, reason: str) -> str:
        if name in READABLE:
            return f"{name!r} is readable {READABLE[name]}"
        return reason

    def _mechanism(
        self, event: m.Event, name: str, mechanisms: dict, written: set[str], calling=()
    ) -> None:
        mechanism = mechanisms.get(name)
        if mechanism is None or name in calling:  # a call cycle is reported by ``calls``
            return
        what = f"mechanism {name!r}"
        for attribute, where in reads(mechanism, skip=mechanism.output):
            self._read(event, attribute, where, ("mechanisms", name), written, what)
        written.add(mechanism.output.name)
        for target, _ in mechanism.call_sites():
            self._mechanism(event, target, mechanisms, written, (*calling, name))

    def _read(self, event, name, where, path, written, what) -> None:
        if name == "category" and what != "an account action":
            self._flow_error(
                f"{what} reads 'category', which is not set yet on event {event.name!r}: "
                f"category is readable {READABLE['category']}",
                where,
                path,
                name,
            )
        elif self._derived(name) and name not in written:
            writers = sorted(self.written.get(name, []))
            self._flow_error(
                f"{what} reads {name!r} before any mechanism of event {event.name!r} writes "
                f"it (it would be null; written by {', '.join(writers) or 'nothing'}: run that "
                "earlier in the event's processes)",
                where,
                path,
                name,
            )

    def _flow_error(self, message: str, where: Location | None, path: tuple, symbol: str) -> None:
        key = (message, path)
        if key in self.reported:
            return
        self.reported.add(key)
        location = self.loc(*path)
        if where is not None and where.line is not None:
            location = Location(file=location.file, line=where.line, path=where.path)
        self.errors.append(StrategyValidationError(message, location=location, symbol=symbol))
