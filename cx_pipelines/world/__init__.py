"""The synthetic bank: a documented generative model that fills the source system.

Everything the models will later try to learn (purchase and dropout rates, spend,
response and uplift probabilities) is drawn first and written to ``world_dir()`` as
ground truth, apart from the source tables, so every model can be scored against it.
The generative model is documented in ``README.md`` beside this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

WORLD_START = datetime(2024, 10, 1)
"""First instant of the synthetic world (24 months)."""

WORLD_END = datetime(2026, 9, 30, 23, 59, 59)
"""Last instant of the synthetic world; the "as of" date of every model."""


@dataclass(frozen=True)
class GenerationSummary:
    """What one generation wrote: rows per source table and where the ground truth is."""

    row_counts: dict[str, int]
    truth_path: Path
    customers: int = 0
    seed: int = 0
    seconds: float = 0.0

    def describe(self) -> str:
        """Human-readable summary printed by ``cx generate``."""
        lines = [f"synthetic world: {self.customers:,} customers, seed {self.seed}"]
        lines += [f"  {table}: {rows:,} rows" for table, rows in self.row_counts.items()]
        lines.append(f"  ground truth: {self.truth_path}")
        if self.seconds:
            lines.append(f"  generated in {self.seconds:.1f} s")
        return "\n".join(lines)


def generate_world(*, customers: int, seed: int, source_url: str) -> GenerationSummary:
    """Replace the six source tables in ``source_url`` with a synthetic bank of ``customers``."""
    from cx_pipelines.world.generator import generate

    return generate(customers=customers, seed=seed, source_url=source_url)


__all__ = ["WORLD_END", "WORLD_START", "GenerationSummary", "generate_world"]
