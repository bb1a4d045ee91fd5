"""List processor: the eligible item with the highest score (ties: declared order)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cx_pipelines.engine.evaluation.batch.text import (
    TEXT,
    concat,
    dumps,
    list_text,
    masked,
    number_text,
)
from cx_pipelines.engine.evaluation.shared import true
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.schema import EXPRESSION, IDENTIFIER, obj
from cx_pipelines.engine.mechanisms.base import MechanismKind


@dataclass
class ListItem:
    item_id: str
    condition: m.Expression | None
    score: m.Expression


@dataclass
class ListProcessor(MechanismKind):
    KIND = "list_processor"
    SCHEMA_PROPERTIES = {
        "items": {
            "type": "array",
            "minItems": 1,
            "items": obj(
                {"id": IDENTIFIER, "when": EXPRESSION, "score": EXPRESSION}, ["id", "score"]
            ),
        }
    }
    SCHEMA_REQUIRED = ["items"]

    items: list[ListItem] = field(default_factory=list)

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        loader.output_type_is(output, ValueType.STRING, path, "a list processor")
        items = []
        seen = set()
        for index, item in enumerate(spec["items"]):
            at = (*path, "items", index)
            if item["id"] in seen:
                loader.error(f"item id {item['id']!r} is listed twice", (*at, "id"))
            seen.add(item["id"])
            condition = None
            if "when" in item:
                condition = loader.expression(
                    item["when"], (*at, "when"), over=over, expected=ValueType.BOOLEAN
                )
            score = loader.expression(
                item["score"], (*at, "score"), over=over, expected=ValueType.NUMBER
            )
            if score is not None:
                items.append(ListItem(item["id"], condition, score))
        return cls(name, cls.KIND, output, over, items)

    def evaluate_batch(self, run, level, mask, detail, calls):
        size = run.levels[level].size
        keys = np.full((size, len(self.items)), np.inf)
        scores = np.full((size, len(self.items)), np.nan)
        for position, item in enumerate(self.items):
            score = run.evaluate(item.score, level)
            valid = run.truth(item.condition, level) & ~np.isnan(score)
            keys[valid, position] = -score[valid]
            scores[:, position] = score
        order = np.argsort(keys, axis=1, kind="stable")
        best = order[:, 0] if len(self.items) else np.zeros(size, dtype=np.int64)
        found = np.isfinite(keys[np.arange(size), best])
        ids = np.array([item.item_id for item in self.items] + [None], dtype=object)
        detail["order"], detail["keys"], detail["scores"] = order, keys, scores
        return ids[np.where(found, best, len(self.items))]

    def trace_fields(self, detail, models, field):
        order, keys, scores = detail["order"], detail["keys"], detail["scores"]
        size = len(order)
        rows = np.arange(size)
        ids = np.array([dumps(item.item_id) for item in self.items], dtype=TEXT)
        items = []
        for rank in range(order.shape[1]):
            position = order[:, rank]
            valid = np.isfinite(keys[rows, position])
            text = concat("[", ids[position], ",", number_text(scores[rows, position]), "]")
            items.append(masked(text, valid))
        return {"ranking": field(list_text(items, size))}

    def trace_rows(self, detail, models):
        order, keys, scores = detail["order"], detail["keys"], detail["scores"]
        ids = [item.item_id for item in self.items]

        def write(item: dict, row: int) -> None:
            item["ranking"] = [
                [ids[k], float(scores[row, k])]
                for k in order[row].tolist()
                if np.isfinite(keys[row, k])
            ]

        return write

    def evaluate_record(self, state, record, step, calls):
        ranked = []
        for index, item in enumerate(self.items):
            if true(item.condition, record):
                score = item.score.compiled.evaluate_record(record)
                if score is not None:
                    ranked.append((-score, index, item.item_id, score))
        ranked.sort()
        step["ranking"] = [[item_id, score] for _, _, item_id, score in ranked]
        return ranked[0][2] if ranked else None
