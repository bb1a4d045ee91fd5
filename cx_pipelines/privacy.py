"""Personal data policy: which columns are personal, and masking for everything people read.

Personal data (SPEC S10) stays in the source system and in the warehouse tables that need
it (``customers`` keeps ``email``, ``birth_year`` and ``annual_income`` for the models).
Everywhere else that people read it is masked: asset previews and metadata in the
Dagster UI and event log, ``quarantined_rows.raw_row``, check metadata, log messages,
exports. Call :func:`mask_frame` on a table before showing it, :func:`mask_record` on a
row, :func:`mask_text` on a message.

A column is personal when its name is in :data:`PERSONAL_COLUMNS` or ends with one of
:data:`PERSONAL_SUFFIXES` (``billing_email``, ``home_address``). A new table with a new
kind of personal column adds its name here.

Those allowed to see the values (on an instance no one else reads: the event log keeps
what a run wrote) set ``CX_SHOW_PERSONAL_DATA=1`` for that run.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping

import pandas as pd

PERSONAL_COLUMNS = frozenset(
    {
        "email",
        "name",
        "first_name",
        "last_name",
        "full_name",
        "birth_year",
        "birth_date",
        "date_of_birth",
        "annual_income",
        "income",
        "phone",
        "address",
        "postcode",
        "national_id",
    }
)
"""Column names that hold personal data wherever they appear."""

PERSONAL_SUFFIXES = ("_email", "_name", "_phone", "_address", "_income")

MASK = "***"
"""What a personal value is shown as."""

SHOW_VARIABLE = "CX_SHOW_PERSONAL_DATA"

# Not after ":" or "/": "user:pw@host" in a URL is a login, masked by the URL's own rules.
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+:/*-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")


def personal_data_visible() -> bool:
    """True when this process may show personal values (``CX_SHOW_PERSONAL_DATA=1``)."""
    return os.environ.get(SHOW_VARIABLE, "").strip().lower() in ("1", "true", "yes")


def is_personal(column: str) -> bool:
    """Whether column ``column`` holds personal data."""
    name = str(column).lower()
    return name in PERSONAL_COLUMNS or name.endswith(PERSONAL_SUFFIXES)


def personal_columns(columns: object) -> list[str]:
    """The personal columns among ``columns``."""
    return [column for column in columns if is_personal(column)]


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every present value of a personal column shown as ``***``.

    Null stays null (that a value is missing is not personal). The frame is not changed.
    """
    columns = personal_columns(frame.columns)
    if not columns or personal_data_visible():
        return frame
    masked = frame.copy()
    for column in columns:
        present = masked[column].notna()
        masked[column] = masked[column].astype(object).where(~present, MASK)
    return masked


def mask_record(record: Mapping[str, object]) -> dict[str, object]:
    """One row as a dict, personal values masked (and emails in any text value)."""
    if personal_data_visible():
        return dict(record)
    return {
        key: (MASK if value is not None else None)
        if is_personal(key)
        else (mask_text(value) if isinstance(value, str) else value)
        for key, value in record.items()
    }


def mask_json(text: str) -> str:
    """A JSON object (a quarantined row's ``raw_row``) with its personal values masked."""
    if personal_data_visible():
        return text
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return mask_text(text)
    if not isinstance(record, dict):
        return mask_text(text)
    return json.dumps(mask_record(record), ensure_ascii=False)


def mask_text(text: str) -> str:
    """A free-text message with every e-mail address in it masked."""
    if personal_data_visible():
        return text
    return _EMAIL.sub(MASK, text)
