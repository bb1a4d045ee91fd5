"""Validated ingestion of the source system (plain Python; the Dagster layer is defs/sources).

Each source table is read in chunks, coerced to its types, validated by a Great Expectations
suite built from its contract, and split: accepted rows go to the warehouse table of the same
name, failing rows to ``quarantined_rows`` with the first rule they failed.
"""

from cx_pipelines.ingestion.contracts import CONTRACTS, Field, TableContract, contract_for
from cx_pipelines.ingestion.errors import (
    IngestionError,
    InvalidThresholdError,
    SourceColumnsMissingError,
    SourceTableMissingError,
    SourceUnavailableError,
)
from cx_pipelines.ingestion.pipeline import IngestionReport, References, ingest_table
from cx_pipelines.ingestion.quarantine import (
    QUARANTINE_TABLE,
    quarantined_count,
    quarantined_for,
    rebuild_quarantined_rows,
)
from cx_pipelines.ingestion.settings import DEFAULT_QUARANTINE_THRESHOLD, quarantine_threshold
from cx_pipelines.ingestion.source import SourceReader, mask_url

__all__ = [
    "CONTRACTS",
    "DEFAULT_QUARANTINE_THRESHOLD",
    "QUARANTINE_TABLE",
    "Field",
    "IngestionError",
    "IngestionReport",
    "InvalidThresholdError",
    "References",
    "SourceColumnsMissingError",
    "SourceReader",
    "SourceTableMissingError",
    "SourceUnavailableError",
    "TableContract",
    "contract_for",
    "ingest_table",
    "mask_url",
    "quarantine_threshold",
    "quarantined_count",
    "quarantined_for",
    "rebuild_quarantined_rows",
]
