"""The drop folder for interaction results: which files are waiting, reading them, filing them.

Result files (``*.csv``, ``*.parquet``) are dropped into ``$CX_HOME/inbox/``; names starting
with a dot are ignored, so a writer can write a hidden temporary file and rename it. A file
is identified by its *fingerprint* (name, size and modification time), which changes when a
file of the same name is replaced. Once its rows are committed a file moves to
``inbox/processed/``; a file that cannot be read at all moves to ``inbox/rejected/``. Either
way it is kept, never deleted.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from cx_pipelines import config

RESULT_COLUMNS = (
    "contact_id",
    "customer_id",
    "campaign_id",
    "offer_type",
    "channel",
    "outcome",
    "revenue",
    "responded_at",
)
"""The columns of a result file and of the ``offer_responses`` source table (INTERFACES §3)."""

SUFFIXES = (".csv", ".parquet")
PROCESSED = "processed"
REJECTED = "rejected"


class UnreadableFileError(ValueError):
    """A result file cannot be read as a table with the result columns."""


def inbox_dir() -> Path:
    """The drop folder (``$CX_HOME/inbox``)."""
    return config.cx_home() / "inbox"


@dataclass(frozen=True)
class InboxFile:
    """One file waiting in the inbox."""

    path: Path
    size: int
    modified_ns: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def fingerprint(self) -> str:
        """Name, size and modification time: a replaced file of the same name is a new file."""
        return f"{self.name}|{self.size}|{self.modified_ns}"


def pending_files(folder: Path | None = None) -> list[InboxFile]:
    """Result files waiting in ``folder`` (default the inbox), oldest first, then by name."""
    folder = folder or inbox_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or path.suffix.lower() not in SUFFIXES or not path.is_file():
            continue
        try:
            status = path.stat()
        except FileNotFoundError:  # moved away between listing and stat
            continue
        found.append(InboxFile(path, status.st_size, status.st_mtime_ns))
    return sorted(found, key=lambda file: (file.modified_ns, file.name))


@dataclass
class ResultRows:
    """The rows of one input (a file or the source table), raw, with their row numbers."""

    source: str
    """File name, or ``offer_responses`` for the source table."""
    checksum: str
    """sha256 of the file's bytes (or of the table's rows): the same input gives the same value."""
    raw: pd.DataFrame
    """The result columns as object values, exactly as read (None where empty)."""
    row_numbers: np.ndarray
    """1-based data row of each row of ``raw`` (the header of a CSV file is not counted)."""
    malformed_rows: list[tuple[int, str]] = field(default_factory=list)
    """Rows that could not be split into the file's columns: (row number, what is wrong)."""

    @property
    def rows_read(self) -> int:
        return len(self.raw) + len(self.malformed_rows)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _missing_columns(columns: list[str], path: Path) -> None:
    missing = [column for column in RESULT_COLUMNS if column not in columns]
    if missing:
        raise UnreadableFileError(
            f"{path.name}: no column(s) {', '.join(missing)} "
            f"(a result file needs {', '.join(RESULT_COLUMNS)})"
        )


def _read_csv(path: Path) -> tuple[pd.DataFrame, np.ndarray, list[tuple[int, str]]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [name.strip() for name in next(reader, [])]
            _missing_columns(header, path)
            positions = [header.index(column) for column in RESULT_COLUMNS]
            records, numbers, malformed = [], [], []
            for number, record in enumerate(reader, start=1):
                if not record:  # a blank line holds no row
                    continue
                if len(record) != len(header):
                    malformed.append(
                        (number, f"{len(record)} fields where the header has {len(header)}")
                    )
                    continue
                records.append([record[position] or None for position in positions])
                numbers.append(number)
    except (UnicodeDecodeError, csv.Error) as error:
        raise UnreadableFileError(f"{path.name}: not a UTF-8 CSV file ({error})") from error
    frame = pd.DataFrame(
        {
            column: pd.Series([record[i] for record in records], dtype=object)
            for i, column in enumerate(RESULT_COLUMNS)
        }
    )
    return frame, np.asarray(numbers, dtype=np.int64), malformed


def _read_parquet(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    try:
        schema = pq.read_schema(path)
        _missing_columns(list(schema.names), path)
        table = pq.read_table(path, columns=list(RESULT_COLUMNS))
    except (pa.ArrowException, OSError) as error:
        raise UnreadableFileError(f"{path.name}: not a readable Parquet file ({error})") from error
    frame = pd.DataFrame(
        {
            column: pd.Series(table.column(column).to_pylist(), dtype=object)
            for column in RESULT_COLUMNS
        }
    )
    return frame, np.arange(1, len(frame) + 1, dtype=np.int64)


def read_result_file(path: Path) -> ResultRows:
    """The rows of one result file; only the result columns are kept (extra columns are
    never read into memory, so personal data a sender added goes nowhere)."""
    checksum = _sha256(path)
    if path.suffix.lower() == ".csv":
        raw, numbers, malformed = _read_csv(path)
    else:
        raw, numbers = _read_parquet(path)
        malformed = []
    return ResultRows(path.name, checksum, raw, numbers, malformed)


def table_rows(frame: pd.DataFrame, *, source: str) -> ResultRows:
    """An accepted source table (``offer_responses``) as one input."""
    raw = pd.DataFrame(
        {
            column: frame[column].astype(object).where(frame[column].notna(), None)
            for column in RESULT_COLUMNS
        }
    )
    hashed = pd.util.hash_pandas_object(raw.astype(str), index=False).to_numpy()
    checksum = hashlib.sha256(np.sort(hashed).tobytes()).hexdigest()
    return ResultRows(source, checksum, raw, np.arange(1, len(raw) + 1, dtype=np.int64))


def file_away(path: Path, subfolder: str) -> Path:
    """Move ``path`` into ``<its folder>/<subfolder>/`` without overwriting an earlier file."""
    target_dir = path.parent / subfolder
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    counter = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{counter}{path.suffix}"
        counter += 1
    os.replace(path, target)
    return target
