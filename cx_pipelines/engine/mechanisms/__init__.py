"""Mechanism kinds, one module each, gathered in one registry.

Each kind is a class (see :mod:`.base` for what it provides: schema keys, loading,
batch form, per-record reference and fast forms, trace). The loader, the JSON Schema and
both evaluators reach a kind only through ``KINDS`` or the instance's own methods, so
adding a kind is one new module plus its entry here.
"""

from __future__ import annotations

from cx_pipelines.engine.mechanisms.aggregate import Aggregate
from cx_pipelines.engine.mechanisms.base import MechanismKind
from cx_pipelines.engine.mechanisms.calculation import Calculation
from cx_pipelines.engine.mechanisms.decision_tree import Branch, DecisionTree, Leaf
from cx_pipelines.engine.mechanisms.list_processor import ListItem, ListProcessor
from cx_pipelines.engine.mechanisms.matrix import Axis, Matrix
from cx_pipelines.engine.mechanisms.model_score import ModelScore
from cx_pipelines.engine.mechanisms.scorecard import Characteristic, Scorecard
from cx_pipelines.engine.mechanisms.user_exit import UserExitMechanism

KINDS: dict[str, type[MechanismKind]] = {
    kind.KIND: kind
    for kind in (
        DecisionTree,
        Matrix,
        Scorecard,
        ModelScore,
        ListProcessor,
        UserExitMechanism,
        Aggregate,
        Calculation,
    )
}
"""Every mechanism kind by its ``type:`` name, in the order the schema lists them."""

__all__ = [
    "KINDS",
    "Aggregate",
    "Axis",
    "Branch",
    "Calculation",
    "Characteristic",
    "DecisionTree",
    "Leaf",
    "ListItem",
    "ListProcessor",
    "Matrix",
    "MechanismKind",
    "ModelScore",
    "Scorecard",
    "UserExitMechanism",
]
