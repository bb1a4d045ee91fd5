"""Loading the decision-flow sections: data dictionary, segments, test groups, processes,
events and categories.

Mixed into the loader's compiler; see ``compile.py`` for the helpers it relies on
(``expression``, ``error``, ``check_name``, ``loc``).
"""

from __future__ import annotations

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.mechanisms import Calculation

_TYPES = {t.value: t for t in ValueType}


class FlowCompiler:
    """The strategy sections that route a customer to mechanisms and categories."""

    def data_dictionary(self) -> None:
        dictionary = self.data["data_dictionary"]
        for name, spec in dictionary.get("customer", {}).items():
            self.attributes[name] = m.Attribute(
                name, _TYPES[spec["type"]], bool(spec.get("derived")), None, name
            )
        if "customer_id" not in self.attributes:
            self.error(
                "the data dictionary needs `customer_id: {type: string}` (or number)",
                ("data_dictionary", "customer"),
            )
        for name in m.BUILTIN_ATTRIBUTES:
            if name in self.attributes:
                self.error(
                    f"{name!r} is set by the engine; do not declare it",
                    ("data_dictionary", "customer", name),
                )
        self.account_types: dict[str, int | None] = {}
        for account_type, spec in (dictionary.get("accounts") or {}).items():
            self.account_types[account_type] = spec.get("max_iterations")
            if account_type in self.attributes or any(
                a.startswith(account_type + ".") for a in self.attributes
            ):
                self.error(
                    f"account type {account_type!r} clashes with a customer attribute name",
                    ("data_dictionary", "accounts", account_type),
                )
            for name, attribute in spec["attributes"].items():
                full = f"{account_type}.{name}"
                self.attributes[full] = m.Attribute(
                    full,
                    _TYPES[attribute["type"]],
                    bool(attribute.get("derived")),
                    account_type,
                    name,
                )

    def segments(self) -> list[m.Segment]:
        result = []
        items = self.data["segments"]
        names = set()
        for index, item in enumerate(items):
            at = ("segments", index)
            if item["name"] in names:
                self.error(f"segment {item['name']!r} is declared twice", (*at, "name"))
            names.add(item["name"])
            last = index == len(items) - 1
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"], (*at, "when"), over=None, expected=ValueType.BOOLEAN
                )
                if last:
                    self.error(
                        "the last segment must have no `when`, so every customer has a segment",
                        (*at, "when"),
                    )
            elif not last:
                self.error("only the last segment may omit `when` (segments are first-match)", at)
            result.append(m.Segment(item["name"], condition))
        return result

    def test_groups(
        self, segments: list[m.Segment]
    ) -> tuple[str, dict[str, list[tuple[str, float]]]]:
        spec = self.data.get("test_groups") or {"salt": "", "by_segment": {}}
        names = [s.name for s in segments]
        by_segment = spec.get("by_segment") or {}
        result: dict[str, list[tuple[str, float]]] = {}
        for segment in by_segment:
            self.check_name(segment, names, "segment", ("test_groups", "by_segment", segment))
        for segment in names:
            if segment in by_segment:
                groups, at = by_segment[segment], ("test_groups", "by_segment", segment)
            elif "default" in spec:
                groups, at = spec["default"], ("test_groups", "default")
            else:
                groups, at = {"champion": 100}, ("test_groups",)
            total = sum(groups.values())
            if abs(total - 100) > 1e-9:
                self.error(
                    f"test group percentages of segment {segment!r} sum to {total:g}, not 100",
                    at,
                )
            result[segment] = [(g, float(p)) for g, p in groups.items()]
        return spec.get("salt", ""), result

    def processes(
        self, groups: dict[str, list[tuple[str, float]]], mechanisms
    ) -> dict[str, m.Process]:
        all_groups = sorted({g for items in groups.values() for g, _ in items})
        result = {}
        for name, spec in self.data["processes"].items():
            at = ("processes", name)

            def resolve(value, path) -> list[str]:
                names = value if isinstance(value, list) else [value]
                found = []
                for index, item in enumerate(names):
                    where = (*path, index) if isinstance(value, list) else path
                    if self.check_name(item, self.data["mechanisms"], "mechanism", where):
                        found.append(item)
                return found

            if "by_test_group" in spec:
                table = {}
                for group, value in spec["by_test_group"].items():
                    if group != "default":
                        self.check_name(
                            group, all_groups, "test group", (*at, "by_test_group", group)
                        )
                    table[group] = resolve(value, (*at, "by_test_group", group))
                if "default" not in table:
                    for segment, items in groups.items():
                        for group, _ in items:
                            if group not in table:
                                self.error(
                                    f"test group {group!r} of segment {segment!r} has no "
                                    f"mechanism in process {name!r}; add it under "
                                    "`by_test_group` or add `default:`",
                                    (*at, "by_test_group"),
                                )
                result[name] = m.Process(name, [], table)
            elif "mechanisms" in spec:
                result[name] = m.Process(name, resolve(spec["mechanisms"], (*at, "mechanisms")))
            else:
                result[name] = m.Process(name, resolve(spec["mechanism"], (*at, "mechanism")))
        return result

    def events(self, processes) -> dict[str, m.Event]:
        result = {}
        declared_types = self.data.get("interaction_types")
        for name, spec in self.data["events"].items():
            at = ("events", name)
            if isinstance(spec, list):
                spec = {"processes": spec}
                process_path = at
            else:
                process_path = (*at, "processes")
            interaction_type = spec.get("interaction_type")
            if interaction_type is not None and declared_types is not None:
                self.check_name(
                    interaction_type, declared_types, "interaction type", (*at, "interaction_type")
                )
            for index, process in enumerate(spec["processes"]):
                self.check_name(process, processes, "process", (*process_path, index))
            result[name] = m.Event(
                name, interaction_type, list(spec["processes"]), spec.get("categorize", True)
            )
        return result

    def categories(self) -> tuple[list[m.CategoryRule], list[m.AccountAction]]:
        spec = self.data.get("categories")
        if not spec:
            return [], []
        rules = []
        for index, item in enumerate(spec["rules"]):
            at = ("categories", "rules", index)
            last = index == len(spec["rules"]) - 1
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"], (*at, "when"), over=None, expected=ValueType.BOOLEAN
                )
            elif not last:
                self.error(
                    "only the last category may omit `when` (categories are first-match)", at
                )
            rules.append(m.CategoryRule(item["name"], condition))
        names = [r.name for r in rules]
        actions = []
        for index, item in enumerate(spec.get("account_actions") or []):
            at = ("categories", "account_actions", index)
            self.check_name(item["category"], names, "category", (*at, "category"))
            if not self.check_name(
                item["account_type"], self.account_types, "account type", (*at, "account_type")
            ):
                continue
            condition = None
            if "when" in item:
                condition = self.expression(
                    item["when"],
                    (*at, "when"),
                    over=item["account_type"],
                    expected=ValueType.BOOLEAN,
                )
            calculations = self.action_calculations(item, at)
            actions.append(
                m.AccountAction(
                    item["category"], item["account_type"], condition, item["action"], calculations
                )
            )
        return rules, actions

    def action_calculations(self, item: dict, at: tuple) -> list[m.Mechanism]:
        """An account action's `calculate:` entries as calculation mechanisms of its type."""
        calculations = []
        account_type = item["account_type"]
        for name, value in (item.get("calculate") or {}).items():
            where = (*at, "calculate", name)
            attribute = self.attributes.get(name)
            if attribute is not None and attribute.account_type not in (None, account_type):
                self.error(
                    f"an account action on {account_type} accounts calculates {name!r}, an "
                    f"attribute of {attribute.account_type} accounts; it can calculate only "
                    f"`{account_type}.<derived attribute>` (calculate {name!r} in an action "
                    f"with `account_type: {attribute.account_type}`)",
                    where,
                    symbol=name,
                )
                continue
            if attribute is None or not attribute.derived or attribute.account_type != account_type:
                self.error(
                    f"an account action calculates {name!r}, which is not a derived attribute "
                    f"of {account_type!r}; declare `{account_type}.<name>` with `derived: true`",
                    where,
                    symbol=name,
                )
                continue
            self.written.setdefault(name, []).append(f"account action {item['action']}")
            expression = self.expression(value, where, over=account_type, expected=None)
            if expression is None:
                continue
            if expression.compiled.result_type is not attribute.value_type:
                self.error(
                    f"type mismatch: {expression.text!r} gives "
                    f"{expression.compiled.result_type.name} values but {name!r} is declared "
                    f"{attribute.value_type.name}",
                    where,
                    symbol=name,
                )
                continue
            calculations.append(
                Calculation(item["action"], Calculation.KIND, attribute, account_type, expression)
            )
        return calculations
