"""Resources of the sources domain: where the source system is, how much quarantine is too much."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from cx_pipelines import config
from cx_pipelines.ingestion import quarantine_threshold
from cx_pipelines.ingestion.source import DEFAULT_CHUNK_ROWS, mask_url


class SourceDatabase(dg.ConfigurableResource):
    """The source system, any SQLAlchemy URL (SQLite by default, PostgreSQL by changing it)."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; empty means CX_SOURCE_URL, else SQLite in CX_HOME.",
    )
    chunk_rows: int = Field(
        default=DEFAULT_CHUNK_ROWS, description="Rows read and validated at a time."
    )

    def resolved_url(self) -> str:
        """The URL to read, resolved when the run starts (not when definitions load)."""
        return self.url or config.source_url()

    def masked_url(self) -> str:
        return mask_url(self.resolved_url())


class QuarantinePolicy(dg.ConfigurableResource):
    """The largest share of a source table's rows that may be quarantined before the run stops."""

    max_quarantine_rate: float | None = Field(
        default=None,
        description="Fraction of rows, e.g. 0.05; empty means CX_QUARANTINE_THRESHOLD, else 0.05.",
    )

    def threshold(self) -> float:
        return quarantine_threshold(self.max_quarantine_rate)
