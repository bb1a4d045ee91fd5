"""Errors of ingestion: each names the source table and the (password-masked) database URL."""

from __future__ import annotations

from cx_pipelines.privacy import mask_text


class IngestionError(Exception):
    """Base class of every error raised while reading or validating the source system."""


class SourceUnavailableError(IngestionError):
    """The source database cannot be opened or read."""

    def __init__(self, *, table: str, url: str, reason: str) -> None:
        self.table = table
        self.url = url
        # A driver's reason can quote a value ("invalid input syntax: 'ann@example.com'").
        super().__init__(f"Cannot read source table {table!r} from {url}: {mask_text(reason)}")


class SourceTableMissingError(IngestionError):
    """The source database has no table of that name."""

    def __init__(self, *, table: str, url: str) -> None:
        self.table = table
        self.url = url
        super().__init__(
            f"Source table {table!r} not found in {url}; "
            "fill the source system first (e.g. `cx generate`) or point CX_SOURCE_URL at it"
        )


class SourceColumnsMissingError(IngestionError):
    """The source table lacks columns that the source contract requires."""

    def __init__(self, *, table: str, url: str, columns: list[str]) -> None:
        self.table = table
        self.url = url
        self.columns = columns
        listed = ", ".join(repr(column) for column in columns)
        super().__init__(f"Source table {table!r} in {url} has no column(s) {listed}")


class InvalidThresholdError(IngestionError):
    """The quarantine threshold is not a fraction between 0 and 1."""
