"""What changed between two versions of a strategy, said in the strategy's own terms.

The comparison walks both YAML documents: named things (mechanisms, processes, events,
attributes, treatments, segments, categories, golden cases, rule groups by scope) are
matched by name, so reordering a mapping is not a change and a renamed mechanism shows
as one removed and one added; inside a matched thing, every differing leaf is listed
with its path (``tree[0].then[1].when``) and old and new value.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cx_pipelines.engine.language.source import format_path
from cx_pipelines.engine.tools.render import band_range

_MISSING = object()

# Lists whose items are matched by a key rather than by position.
_KEYED_LISTS: dict[tuple[str, ...], str] = {
    ("segments",): "name",
    ("categories", "rules"): "name",
    ("golden_cases",): "name",
    ("treatments", "groups"): "scope",
}


@dataclass(frozen=True)
class Change:
    """One difference: ``kind`` is ``added``, ``removed`` or ``changed``."""

    kind: str
    path: tuple[str | int, ...]
    old: Any = None
    new: Any = None
    note: str = ""  # what the path means, e.g. the matrix cell in band terms

    def describe(self) -> str:
        where = format_path(self.path) or "(document)"
        if self.note:
            where += f" ({self.note})"
            if self.kind == "changed" and isinstance(self.old, str) and isinstance(self.new, str):
                return f"~ {where}: {self.old} -> {self.new}"
        if self.kind == "added":
            return f"+ {where}: {_short(self.new)}"
        if self.kind == "removed":
            return f"- {where}: {_short(self.old)}"
        return f"~ {where}: {_short(self.old)} -> {_short(self.new)}"


@dataclass
class StrategyDiff:
    old_name: str
    new_name: str
    changes: list[Change] = field(default_factory=list)

    @property
    def identical(self) -> bool:
        return not self.changes

    def sections(self) -> dict[str, list[Change]]:
        """Changes grouped by top-level section, in document order."""
        grouped: dict[str, list[Change]] = {}
        for change in self.changes:
            grouped.setdefault(str(change.path[0]) if change.path else "", []).append(change)
        return grouped

    def describe(self) -> str:
        header = f"--- {self.old_name}\n+++ {self.new_name}"
        if self.identical:
            return header + "\nno differences (comments and key order aside)\n"
        lines = [header]
        for section, changes in self.sections().items():
            lines.append(f"{section}: {len(changes)} change{'s' if len(changes) != 1 else ''}")
            lines.extend(f"  {change.describe()}" for change in changes)
        return "\n".join(lines) + "\n"


def _short(value: Any, limit: int = 100) -> str:
    if isinstance(value, dict | list):
        text = yaml.safe_dump(value, default_flow_style=True, sort_keys=True, width=10_000).strip()
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key_of(item: Any, key: str, index: int) -> Any:
    if isinstance(item, dict) and key in item:
        value = item[key]
        if isinstance(value, dict):  # a scope: order-independent, readable
            return ",".join(f"{k}={value[k]}" for k in sorted(value)) or "global"
        return value
    return f"#{index}"


def _compare(old: Any, new: Any, path: tuple[str | int, ...], changes: list[Change]) -> None:
    if old is _MISSING:
        changes.append(Change("added", path, new=new))
        return
    if new is _MISSING:
        changes.append(Change("removed", path, old=old))
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [key for key in new if key not in old]:
            _compare(old.get(key, _MISSING), new.get(key, _MISSING), (*path, key), changes)
        return
    keyed = _KEYED_LISTS.get(tuple(str(part) for part in path))
    if keyed and isinstance(old, list) and isinstance(new, list):
        old_items = {_key_of(item, keyed, index): item for index, item in enumerate(old)}
        new_items = {_key_of(item, keyed, index): item for index, item in enumerate(new)}
        for key in list(old_items) + [key for key in new_items if key not in old_items]:
            _compare(
                old_items.get(key, _MISSING), new_items.get(key, _MISSING), (*path, key), changes
            )
        if [k for k in old_items if k in new_items] != [k for k in new_items if k in old_items]:
            changes.append(
                Change("changed", (*path, "(order)"), old=list(old_items), new=list(new_items))
            )
        return
    if isinstance(old, list) and isinstance(new, list):
        for index in range(max(len(old), len(new))):
            _compare(
                old[index] if index < len(old) else _MISSING,
                new[index] if index < len(new) else _MISSING,
                (*path, index),
                changes,
            )
        return
    if (
        old != new
        or type(old) is not type(new)
        and not (isinstance(old, int | float) and isinstance(new, int | float) and old == new)
    ):
        changes.append(Change("changed", path, old=old, new=new))


def diff_documents(
    old: dict[str, Any], new: dict[str, Any], *, old_name: str = "old", new_name: str = "new"
) -> StrategyDiff:
    """Differences between two strategy documents (plain data as read from YAML)."""
    changes: list[Change] = []
    _compare(old, new, (), changes)
    changes = _in_bands(old, new, changes)
    return StrategyDiff(old_name=old_name, new_name=new_name, changes=changes)


def _matrix(document: dict[str, Any], name: Any) -> dict[str, Any] | None:
    spec = (document.get("mechanisms") or {}).get(name) if isinstance(document, dict) else None
    return spec if isinstance(spec, dict) and spec.get("type") == "matrix" else None


def _axis(spec: dict[str, Any] | None, which: str) -> tuple[str, list[str]]:
    """An axis of a matrix document: its attribute (or expression) and its band labels."""
    axis = (spec or {}).get(which)
    if not isinstance(axis, dict):
        return "", []
    label = str(axis.get("attribute") or axis.get("expression") or which)
    if isinstance(axis.get("bands"), list):
        return label, [band_range(*band) for band in axis["bands"] if len(band) == 2]
    return label, [str(category) for category in axis.get("categories") or []]


def _band(spec: dict[str, Any] | None, which: str, index: int) -> str:
    label, bands = _axis(spec, which)
    return f"{label} {bands[index]}" if index < len(bands) else f"{label} (band {index + 1})"


def _in_bands(old: dict[str, Any], new: dict[str, Any], changes: list[Change]) -> list[Change]:
    """Matrix changes said in band terms: which cell (row band x column band), which axis."""
    result: list[Change] = []
    axes_done: set[tuple[Any, str]] = set()
    for change in changes:
        path = change.path
        if len(path) < 4 or path[0] != "mechanisms":
            result.append(change)
            continue
        before, after = _matrix(old, path[1]), _matrix(new, path[1])
        spec = after or before
        if spec is None:
            result.append(change)
            continue
        part = path[2]
        if part in ("rows", "columns") and path[3] in ("bands", "categories"):
            if (path[1], part) in axes_done:
                continue  # one change per axis, whatever moved inside it
            axes_done.add((path[1], part))
            old_label, old_bands = _axis(before, part)
            new_label, new_bands = _axis(after, part)
            result.append(
                Change(
                    "changed",
                    path[:4],
                    old=" | ".join(old_bands),
                    new=" | ".join(new_bands),
                    note=f"{part} of {new_label or old_label}",
                )
            )
        elif part == "values" and isinstance(path[3], int):
            row = _band(spec, "rows", path[3])
            if len(path) >= 5 and isinstance(path[4], int) and "columns" in spec:
                note = f"cell {row} × {_band(spec, 'columns', path[4])}"
            else:
                note = f"row {row}"
            result.append(Change(change.kind, path, change.old, change.new, note=note))
        else:
            result.append(change)
    return result


def diff_files(old: str | Path, new: str | Path) -> StrategyDiff:
    """Differences between two strategy files (read as YAML; validate them separately)."""
    documents = []
    for path in (old, new):
        with open(path, encoding="utf-8") as handle:
            documents.append(yaml.safe_load(handle) or {})
    return diff_documents(documents[0], documents[1], old_name=str(old), new_name=str(new))
