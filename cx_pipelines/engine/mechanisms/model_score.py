"""Model score: a registered model's precomputed score, read from a number attribute.

The trace names the model and its version (``model_versions`` given to the evaluator,
else the mechanism's ``version:``, else ``unknown``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.schema import ATTRIBUTE_NAME
from cx_pipelines.engine.mechanisms.base import MechanismKind


@dataclass
class ModelScore(MechanismKind):
    KIND = "model_score"
    SCHEMA_PROPERTIES = {
        "model": {"type": "string"},
        "input": ATTRIBUTE_NAME,
        "version": {"type": ["string", "number"]},
        "default": {"type": ["number", "null"]},
    }
    SCHEMA_REQUIRED = ["model", "input"]

    model: str = ""
    input: m.Attribute | None = None
    version: str | None = None
    default: float | None = None

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        loader.output_type_is(output, ValueType.NUMBER, path, "a model score")
        source = loader.attribute_ref(spec["input"], (*path, "input"), over=over)
        if source is not None and source.value_type is not ValueType.NUMBER:
            loader.error(
                f"type mismatch: model score input {source.name!r} must be a NUMBER",
                (*path, "input"),
            )
        version = spec.get("version")
        return cls(
            name,
            cls.KIND,
            output,
            over,
            spec["model"],
            source,
            None if version is None else str(version),
            spec.get("default"),
        )

    def models(self, model_versions):
        if model_versions and self.model in model_versions:
            return {self.model: str(model_versions[self.model])}
        return {self.model: self.version or "unknown"}

    def evaluate_batch(self, run, level, mask, detail, calls):
        value = np.asarray(run.frame(level)[self.input.name], dtype=np.float64).copy()
        value[np.isnan(value)] = np.nan if self.default is None else float(self.default)
        return value

    def trace_fields(self, detail, models, field):
        return {"model": self.model, "version": models.get(self.model, "unknown")}

    def trace_rows(self, detail, models):
        entries = {"model": self.model, "version": models.get(self.model, "unknown")}

        def write(item: dict, row: int) -> None:
            item.update(entries)

        return write

    def evaluate_record(self, state, record, step, calls):
        step["model"] = self.model
        step["version"] = state.model_versions.get(self.model, "unknown")
        value = record[self.input.name]
        return self.default if value is None else value
