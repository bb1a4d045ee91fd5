"""What a simulation found: decision distributions, shifts against another strategy, and
the text report ``cx strategy simulate`` prints.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from tabulate import tabulate


@dataclass
class DecisionShift:
    """How one decision column moved between two strategies."""

    column: str
    level: str  # customer | account
    rows: int
    changed: int
    transitions: pd.DataFrame  # old, new, count (changed rows only, most frequent first)
    by_segment: pd.DataFrame  # segment, rows, changed, share


@dataclass
class SimulationReport:
    strategy: str
    event: str
    customers: int
    accounts: int
    distributions: dict[str, pd.Series]  # "customer:<column>" / "account:<column>" → counts
    numbers: dict[str, tuple[float, float]]  # numeric derived column → (mean, non-null share)
    against: str | None = None
    shifts: list[DecisionShift] = field(default_factory=list)
    against_numbers: dict[str, tuple[float, float]] = field(default_factory=dict)
    treatments: pd.DataFrame | None = None  # treatment, segment, offered (customers), against
    examples: list[dict[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        lines = [
            f"simulated {self.strategy} on event {self.event}: "
            f"{self.customers:,} customers, {self.accounts:,} accounts"
        ]
        for key, counts in self.distributions.items():
            total = counts.sum()
            shown = ", ".join(
                f"{value} {count:,} ({count / total:.1%})"
                for value, count in counts.head(8).items()
            )
            more = f", ... {len(counts) - 8} more" if len(counts) > 8 else ""
            lines.append(f"  {key}: {shown}{more}")
        for column, (mean, share) in self.numbers.items():
            lines.append(f"  {column}: mean {mean:,.2f} over {share:.0%} with a value")
        if self.treatments is not None and len(self.treatments):
            lines.append("  treatments offered (customers with the treatment on any channel):")
            table = tabulate(self.treatments, headers="keys", showindex=False, tablefmt="simple")
            lines.extend("      " + row for row in table.splitlines())
        if self.against is None:
            return "\n".join(lines) + "\n"
        lines += ["", f"against {self.against}:"]
        for shift in self.shifts:
            share = shift.changed / shift.rows if shift.rows else 0.0
            lines.append(
                f"  {shift.level} {shift.column}: {shift.changed:,} of {shift.rows:,} "
                f"changed ({share:.1%})"
            )
            if shift.changed:
                table = tabulate(
                    shift.transitions.head(10), headers="keys", showindex=False, tablefmt="simple"
                )
                lines.extend("      " + row for row in table.splitlines())
                if len(shift.by_segment):
                    table = tabulate(
                        shift.by_segment,
                        headers="keys",
                        showindex=False,
                        tablefmt="simple",
                        floatfmt=".1%",
                    )
                    lines.extend("      " + row for row in table.splitlines())
        for column, (mean, _) in self.numbers.items():
            if column in self.against_numbers and not math.isclose(
                mean, self.against_numbers[column][0]
            ):
                lines.append(
                    f"  {column}: mean {self.against_numbers[column][0]:,.2f} -> {mean:,.2f}"
                )
        if self.examples:
            lines.append("  example customers:")
            for example in self.examples:
                moves = "; ".join(
                    f"{k}: {old} -> {new}" for k, (old, new) in example["changes"].items()
                )
                lines.append(f"    {example['customer_id']} ({example['segment']}): {moves}")
        return "\n".join(lines) + "\n"
