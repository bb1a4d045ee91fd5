"""Decision tree: ordered ``when``/``else`` branches, nested, ending in leaves (seed 004 FIG. 11).

A leaf is a value, or ``{decision: value, call: mechanism}`` to run another mechanism
(same ``over``) for the customers or accounts that reach it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cx_pipelines.engine.evaluation.batch.columns import to_values
from cx_pipelines.engine.evaluation.batch.text import TEXT, dumps
from cx_pipelines.engine.evaluation.shared import RECORD_FAILURES, record_function, true
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.literals import expression_text
from cx_pipelines.engine.language.schema import EXPRESSION, IDENTIFIER, SCALAR, obj
from cx_pipelines.engine.language.source import format_path, split_path
from cx_pipelines.engine.language.validation import fall_through, unreachable_branches
from cx_pipelines.engine.mechanisms.base import MechanismKind, settled


@dataclass
class Leaf:
    leaf_id: int
    value: Any
    call: str | None
    path: str  # e.g. "tree[1].else[0].then"


@dataclass
class Branch:
    condition: m.Expression | None  # None for `else`
    outcome: list[Branch] | Leaf


@dataclass
class DecisionTree(MechanismKind):
    KIND = "decision_tree"
    SCHEMA_PROPERTIES = {"tree": {"$ref": "#/$defs/branches"}}
    SCHEMA_REQUIRED = ["tree"]
    SCHEMA_DEFS = {
        "outcome": {
            "description": "a leaf value, a nested list of branches, or {decision, call}",
            "anyOf": [
                SCALAR,
                {"$ref": "#/$defs/branches"},
                obj({"decision": SCALAR, "call": IDENTIFIER}, ["decision"]),
            ],
        },
        "branches": {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    obj(
                        {"when": EXPRESSION, "then": {"$ref": "#/$defs/outcome"}}, ["when", "then"]
                    ),
                    obj({"else": {"$ref": "#/$defs/outcome"}}, ["else"]),
                    obj(
                        {"missing": EXPRESSION, "then": {"$ref": "#/$defs/outcome"}},
                        ["missing", "then"],
                    ),
                ]
            },
        },
    }

    branches: list[Branch] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        leaves: list[Leaf] = []

        def branches(items: list, at: tuple) -> list[Branch]:
            result = []
            for index, item in enumerate(items):
                if "else" in item:
                    condition, key = None, "else"
                elif "missing" in item:  # the branch for nulls: `x is null`
                    key = "then"
                    condition = loader.expression(
                        f"({expression_text(item['missing'])}) is null",
                        (*at, index, "missing"),
                        over=over,
                        expected=ValueType.BOOLEAN,
                    )
                else:
                    key = "then"
                    condition = loader.expression(
                        item["when"], (*at, index, "when"), over=over, expected=ValueType.BOOLEAN
                    )
                result.append(Branch(condition, outcome(item[key], (*at, index, key))))
            return result

        def outcome(value: Any, at: tuple):
            if isinstance(value, list):
                return branches(value, at)
            call = None
            if isinstance(value, dict):
                call = value.get("call")
                value = value.get("decision")
            loader.literal_fits(value, output, at)
            leaf = Leaf(len(leaves), value, call, format_path(at[2:]))
            leaves.append(leaf)
            return leaf

        root = branches(spec["tree"], (*path, "tree"))
        for problem in unreachable_branches(spec["tree"], (*path, "tree"), loader.source):
            loader.warnings.append(problem)
        loader.warnings.extend(fall_through(spec["tree"], (*path, "tree"), loader.source, name))
        return cls(name, cls.KIND, output, over, branches=root, leaves=leaves)

    def call_sites(self) -> list[tuple[str, tuple]]:
        return [(leaf.call, (*split_path(leaf.path), "call")) for leaf in self.leaves if leaf.call]

    # ------------------------------------------------------------ batch
    def evaluate_batch(self, run, level, mask, detail, calls):
        size = run.levels[level].size
        leaf = np.full(size, -1, dtype=np.int64)
        active = np.ones(size, dtype=bool) if mask is None else mask

        # depth first, as a recursion would go, but with a list of branches still to walk:
        # a recursive closure is a reference cycle (its cell holds it) that kept the whole
        # batch run alive until the next collection
        pending: list[tuple[list[Branch], np.ndarray]] = [(self.branches, active)]
        while pending:
            branches, reach = pending.pop()
            # first branch whose condition holds, for every row at once
            none = len(branches)
            first = np.full(size, none, dtype=np.int64)
            for position in range(len(branches) - 1, -1, -1):
                condition = branches[position].condition
                if condition is None:
                    first[:] = position
                else:
                    first = np.where(run.truth(condition, level), position, first)
            taken = reach & (first < none)
            first = np.minimum(first, none - 1)
            leaf_of = np.array(
                [b.outcome.leaf_id if isinstance(b.outcome, Leaf) else -1 for b in branches]
            )
            chosen = np.where(taken, leaf_of[first], -1)
            at_leaf = chosen >= 0
            leaf[at_leaf] = chosen[at_leaf]
            inner_walks = []
            for position, branch in enumerate(branches):
                if not isinstance(branch.outcome, Leaf):
                    inner = taken & (first == position)
                    if inner.any():
                        inner_walks.append((branch.outcome, inner))
            pending.extend(reversed(inner_walks))  # the first inner branch is walked next
        leaves = self.leaves
        table = to_values(
            [leaf_.value for leaf_ in leaves] + [None], self.output.value_type, len(leaves) + 1
        )
        detail["leaf"] = leaf
        for item in leaves:
            if item.call:
                reached = leaf == item.leaf_id
                if reached.any():
                    calls.append((item.call, reached))
        return table[leaf]  # -1 picks the trailing null

    def trace_fields(self, detail, models, field):
        paths = np.array([dumps(leaf.path) for leaf in self.leaves] + ["null"], dtype=TEXT)
        return {"path": field(paths[detail["leaf"]])}

    def trace_rows(self, detail, models):
        paths = [leaf.path for leaf in self.leaves] + [None]
        chosen = [paths[i] for i in detail["leaf"].tolist()]

        def write(item: dict, row: int) -> None:
            item["path"] = chosen[row]

        return write

    # ------------------------------------------------------------ per record
    def evaluate_record(self, state, record, step, calls):
        branches = self.branches
        while True:
            for branch in branches:
                if true(branch.condition, record):
                    outcome = branch.outcome
                    break
            else:
                step["path"] = None
                return None
            if type(outcome) is Leaf:
                step["path"] = outcome.path
                if outcome.call:
                    calls.append(outcome.call)
                return outcome.value
            branches = outcome

    def fast_record(self):
        value_type = self.output.value_type
        reference = self.evaluate_record

        def prepare(branches):
            prepared = []
            for branch in branches:
                outcome = branch.outcome
                if type(outcome) is Leaf:
                    leaf = (outcome, settled(outcome.value, value_type))
                    prepared.append((record_function(branch.condition), None, leaf))
                else:
                    prepared.append((record_function(branch.condition), prepare(outcome), None))
            return prepared

        root = prepare(self.branches)

        def tree(state, record, step, calls):
            branches = root
            try:
                while True:
                    for condition, deeper, leaf in branches:  # noqa: B007 - used after break
                        if condition is None or condition(record) is True:
                            break
                    else:
                        step["path"] = None
                        return None
                    if deeper is None:
                        break
                    branches = deeper
            except RECORD_FAILURES:
                return reference(state, record, step, calls)
            outcome, value = leaf
            step["path"] = outcome.path
            if outcome.call:
                calls.append(outcome.call)
            return value

        return tree
