"""Cross-checks run after every section is loaded: derived attributes that are never
written, golden cases, and mechanisms or processes nothing uses.

Mixed into the loader's compiler; see ``compile.py`` for the helpers it relies on.
"""

from __future__ import annotations

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import (
    StrategyValidationError,
    UnknownAttributeError,
    suggest,
)


class CrossChecks:
    """Whole-strategy checks that need several sections at once."""

    def derived_written(self) -> None:
        for name, attribute in self.attributes.items():
            if attribute.derived and name not in self.written:
                self.warnings.append(
                    StrategyValidationError(
                        f"derived attribute {name!r} is never written by a mechanism "
                        "(it stays null)",
                        location=self.source.location(_attribute_path(attribute)),
                        symbol=name,
                    )
                )

    def golden(self, events) -> list[m.GoldenCase]:
        cases = []
        channels = self.data.get("channels") or []
        for index, case in enumerate(self.data.get("golden_cases") or []):
            at = ("golden_cases", index)
            self.check_name(case["event"], events, "event", (*at, "event"))
            if "channel" in case:
                self.check_name(case["channel"], channels, "channel", (*at, "channel"))
            for channel in case["expect"].get("treatments") or {}:
                self.check_name(
                    channel, channels, "channel", (*at, "expect", "treatments", channel)
                )
            for attribute in case["expect"].get("attributes") or {}:
                if (
                    attribute not in self.attributes
                    or self.attributes[attribute].account_type is not None
                ):
                    self.errors.append(
                        UnknownAttributeError(
                            f"expected attribute {attribute!r} is not a customer attribute",
                            location=self.loc(*at, "expect", "attributes", attribute),
                            symbol=attribute,
                            suggestion=suggest(attribute, self.scope(None)),
                        )
                    )
            self._golden_inputs(case, at)
            cases.append(m.GoldenCase(case["name"], case, self.source.location(at).path or ""))
        return cases

    def _golden_inputs(self, case: dict, at: tuple) -> None:
        """Golden inputs name only declared input attributes, and every customer one."""
        inputs = [
            a.name for a in self.attributes.values() if not a.derived and a.account_type is None
        ]
        for key in case["customer"]:
            if key not in inputs:
                self.errors.append(
                    UnknownAttributeError(
                        f"golden case customer has {key!r}, which is not an input customer "
                        "attribute",
                        location=self.loc(*at, "customer", key),
                        symbol=key,
                        suggestion=suggest(key, inputs),
                    )
                )
        missing = [name for name in inputs if name not in case["customer"]]
        if missing:
            self.error(
                f"golden case customer lacks {', '.join(missing)} (use null for a missing value)",
                (*at, "customer"),
            )
        for index, account in enumerate(case.get("accounts") or []):
            account_type = account.get("account_type")
            where = (*at, "accounts", index)
            if not self.check_name(
                str(account_type), self.account_types, "account type", (*where, "account_type")
            ):
                continue
            allowed = {"account_id", "account_type", "customer_id"} | {
                a.column
                for a in self.attributes.values()
                if a.account_type == account_type and not a.derived
            }
            for key in account:
                if key not in allowed:
                    self.errors.append(
                        UnknownAttributeError(
                            f"golden case account has {key!r}, which is not an input attribute "
                            f"of {account_type!r}",
                            location=self.loc(*where, key),
                            symbol=key,
                            suggestion=suggest(key, allowed),
                        )
                    )

    def unused(self) -> None:
        """Warnings for mechanisms no process runs and processes no event runs."""
        used_processes = {
            p
            for event in self.data["events"].values()
            for p in (event if isinstance(event, list) else event["processes"])
        }
        for name in self.data["processes"]:
            if name not in used_processes:
                self.warnings.append(
                    StrategyValidationError(
                        f"process {name!r} is not run by any event",
                        location=self.loc("processes", name),
                    )
                )
        used = set()
        for spec in self.data["processes"].values():
            for key in ("mechanism", "mechanisms"):
                value = spec.get(key)
                used.update(value if isinstance(value, list) else [value] if value else [])
            for value in (spec.get("by_test_group") or {}).values():
                used.update(value if isinstance(value, list) else [value])
        for spec in self.data["mechanisms"].values():
            for leaf_call in _calls_in(spec.get("tree") or []):
                used.add(leaf_call)
        for name in self.data["mechanisms"]:
            if name not in used:
                self.warnings.append(
                    StrategyValidationError(
                        f"mechanism {name!r} is not used by any process or tree",
                        location=self.loc("mechanisms", name),
                    )
                )


def _calls_in(branches: list) -> list[str]:
    calls = []
    for branch in branches:
        outcome = branch.get("then", branch.get("else"))
        if isinstance(outcome, list):
            calls += _calls_in(outcome)
        elif isinstance(outcome, dict) and outcome.get("call"):
            calls.append(outcome["call"])
    return calls


def _attribute_path(attribute: m.Attribute) -> tuple:
    if attribute.account_type is None:
        return ("data_dictionary", "customer", attribute.name)
    return ("data_dictionary", "accounts", attribute.account_type, "attributes", attribute.column)
