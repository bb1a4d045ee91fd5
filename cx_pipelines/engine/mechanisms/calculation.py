"""Calculation: an expression's value written to a derived attribute (any type)."""

from __future__ import annotations

from dataclasses import dataclass

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.schema import EXPRESSION
from cx_pipelines.engine.mechanisms.base import MechanismKind


@dataclass
class Calculation(MechanismKind):
    KIND = "calculation"
    SCHEMA_PROPERTIES = {"value": EXPRESSION}
    SCHEMA_REQUIRED = ["value"]

    value: m.Expression | None = None

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        value = loader.expression(spec["value"], (*path, "value"), over=over, expected=None)
        if value is None:
            return None
        result_type = value.compiled.result_type
        if output is not None and result_type is not output.value_type:
            loader.error(
                f"type mismatch: calculation {value.text!r} gives {result_type.name} values but "
                f"output {output.name!r} is declared {output.value_type.name}",
                (*path, "value"),
                symbol=output.name,
            )
        return cls(name, cls.KIND, output, over, value)

    def evaluate_batch(self, run, level, mask, detail, calls):
        return run.evaluate(self.value, level)

    def trace_fields(self, detail, models, field):
        return {"expression": self.value.text}

    def trace_rows(self, detail, models):
        text = self.value.text

        def write(item: dict, row: int) -> None:
            item["expression"] = text

        return write

    def evaluate_record(self, state, record, step, calls):
        step["expression"] = self.value.text
        return self.value.compiled.evaluate_record(record)
