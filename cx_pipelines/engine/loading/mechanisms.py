"""Loading the `mechanisms:` section: the output each mechanism writes, its kind's own
``load`` (from the registry in :mod:`cx_pipelines.engine.mechanisms`), and the calls
between mechanisms.

Mixed into the loader's compiler; see ``compile.py`` for the helpers it relies on
(``expression``, ``attribute_ref``, ``error``, ``check_name``, ``loc``).
"""

from __future__ import annotations

from typing import Any

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import UnknownAttributeError, suggest
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.language.literals import value_type_of
from cx_pipelines.engine.language.validation import find_call_cycle
from cx_pipelines.engine.mechanisms import KINDS


class MechanismCompiler:
    """Builds :class:`model.Mechanism` objects and checks their outputs and calls."""

    def output(self, spec: dict, path: tuple, over: str | None) -> m.Attribute | None:
        name = spec["output"]
        if name not in self.attributes:
            self.errors.append(
                UnknownAttributeError(
                    f"output attribute {name!r} is not in the data dictionary; declare it with "
                    "`derived: true`",
                    location=self.loc(*path, "output"),
                    symbol=name,
                    suggestion=suggest(
                        name, [a for a in self.attributes if self.attributes[a].derived]
                    ),
                )
            )
            return None
        attribute = self.attributes[name]
        if not attribute.derived:
            self.error(
                f"{name!r} is an input attribute; a mechanism may only write attributes "
                "declared with `derived: true`",
                (*path, "output"),
                symbol=name,
            )
        if attribute.account_type != over:
            where = f"account type {over!r}" if over else "the customer"
            self.error(
                f"output {name!r} must be an attribute of {where} "
                + (f"(write `{over}.<name>`)" if over else "(not a virtual attribute)"),
                (*path, "output"),
                symbol=name,
            )
        self.written.setdefault(name, []).append(path[-1])
        return attribute

    def output_type_is(self, attribute: m.Attribute | None, value_type: ValueType, path, what: str):
        if attribute is not None and attribute.value_type is not value_type:
            self.error(
                f"type mismatch: {what} gives {value_type.name} values but output "
                f"{attribute.name!r} is declared {attribute.value_type.name}",
                (*path, "output"),
                symbol=attribute.name,
            )

    def literal_fits(self, value: Any, attribute: m.Attribute | None, path) -> None:
        if attribute is None or value is None:
            return
        kind = value_type_of(value)
        expected = attribute.value_type
        if kind is not expected and not (expected is ValueType.DATE and kind is ValueType.STRING):
            self.error(
                f"type mismatch: value {value!r} is {kind.name if kind else type(value).__name__} "
                f"but output {attribute.name!r} is {expected.name}",
                path,
                symbol=str(value),
            )

    def mechanisms(self) -> dict[str, m.Mechanism]:
        built: dict[str, m.Mechanism] = {}
        for name, spec in self.data["mechanisms"].items():
            path = ("mechanisms", name)
            kind = KINDS[spec["type"]]
            over = spec.get("over")
            if over is not None and not self.check_name(
                over, self.account_types, "account type", (*path, "over")
            ):
                continue
            output = self.output(spec, path, None if kind.AGGREGATES_ACCOUNTS else over)
            mechanism = kind.load(self, name, spec, path, over, output)
            if mechanism is not None:
                built[name] = mechanism
        return built

    def calls(self, mechanisms: dict[str, m.Mechanism]) -> None:
        graph: dict[str, list[str]] = {}
        for name, mechanism in mechanisms.items():
            sites = mechanism.call_sites()
            if not sites:
                continue
            graph[name] = []
            for target_name, site in sites:
                at = ("mechanisms", name, *site)
                if not self.check_name(target_name, self.data["mechanisms"], "mechanism", at):
                    continue
                target = mechanisms.get(target_name)
                if target is not None and target.over != mechanism.over:
                    self.error(
                        f"{name!r} runs over {mechanism.over or 'the customer'} but calls "
                        f"{target_name!r}, which runs over {target.over or 'the customer'}",
                        at,
                    )
                graph[name].append(target_name)
        cycle = find_call_cycle(graph)
        if cycle:
            self.error(
                "decision trees call each other in a cycle: " + " → ".join(cycle),
                ("mechanisms", cycle[0]),
                symbol=cycle[0],
            )
