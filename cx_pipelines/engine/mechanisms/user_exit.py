"""User exit: a registered Python function called with the declared inputs.

In batch, the exit's ``batch_function`` (when registered) takes whole columns; without
one the function is called row by row, so both evaluators agree by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cx_pipelines.engine.evaluation.shared import canonical_list
from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError, EvaluationError
from cx_pipelines.engine.language.schema import ATTRIBUTE_NAME
from cx_pipelines.engine.language.user_exits import UserExit, resolve_user_exit
from cx_pipelines.engine.mechanisms.base import MechanismKind


@dataclass
class UserExitMechanism(MechanismKind):
    KIND = "user_exit"
    SCHEMA_PROPERTIES = {
        "function": {"type": "string"},
        "module": {"type": "string"},
        "inputs": {"type": "array", "items": ATTRIBUTE_NAME},
    }
    SCHEMA_REQUIRED = ["function", "inputs"]

    user_exit: UserExit | None = None
    inputs: list[m.Attribute] = field(default_factory=list)

    @classmethod
    def load(cls, loader, name, spec, path, over, output):
        try:
            user_exit = resolve_user_exit(
                spec["function"], module=spec.get("module"), location=loader.loc(*path, "function")
            )
        except EngineError as problem:
            loader.errors.append(problem)
            return None
        inputs = []
        for index, attribute in enumerate(spec["inputs"]):
            ref = loader.attribute_ref(attribute, (*path, "inputs", index), over=over)
            if ref is not None:
                inputs.append(ref)
        return cls(name, cls.KIND, output, over, user_exit, inputs)

    def call(self, arguments: list) -> Any:
        """The exit's function on one row's inputs; a failure names the exit."""
        try:
            return self.user_exit.function(*arguments)
        except EngineError:
            raise
        except Exception as error:  # a user exit is foreign code: name it in the error
            raise EvaluationError(
                f"user exit {self.user_exit.name!r} (mechanism {self.name!r}) failed: "
                f"{type(error).__name__}: {error}",
                symbol=self.user_exit.name,
            ) from error

    def evaluate_batch(self, run, level, mask, detail, calls):
        size = run.levels[level].size
        frame = run.frame(level)
        rows = np.arange(size) if mask is None else np.flatnonzero(mask)
        result = np.empty(size, dtype=object)
        user_exit = self.user_exit
        if user_exit.batch_function is not None:
            arguments = [np.asarray(frame[a.name])[rows] for a in self.inputs]
            try:
                values = user_exit.batch_function(*arguments)
            except EngineError:
                raise
            except Exception as error:  # foreign code: say which exit failed
                raise EvaluationError(
                    f"user exit {user_exit.name!r} (mechanism {self.name!r}) failed in batch: "
                    f"{type(error).__name__}: {error}",
                    symbol=user_exit.name,
                ) from error
            result[rows] = list(np.asarray(values, dtype=object))
            return result
        inputs = [
            canonical_list(np.asarray(frame[a.name])[rows], a.value_type) for a in self.inputs
        ]
        for position, row in enumerate(rows):
            result[row] = self.call([values[position] for values in inputs])
        return result

    def trace_fields(self, detail, models, field):
        return {"function": self.user_exit.name}

    def trace_rows(self, detail, models):
        name = self.user_exit.name

        def write(item: dict, row: int) -> None:
            item["function"] = name

        return write

    def evaluate_record(self, state, record, step, calls):
        step["function"] = self.user_exit.name
        return self.call([record[attribute.name] for attribute in self.inputs])
