"""The decision date the campaigns and the scores are for: one rule for both."""

import os
from datetime import date

import dagster as dg
import pandas as pd

DECISION_DATE_VARIABLE = "CX_DECISION_DATE"


def decision_date(transactions: pd.DataFrame, configured: str = "") -> date:
    """``configured``, else ``CX_DECISION_DATE``, else the day after the last transaction:
    a date from the settings or the inputs, never the wall clock."""
    text = configured or os.environ.get(DECISION_DATE_VARIABLE, "")
    if text:
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise dg.Failure(
                f"decision date {text!r} ({DECISION_DATE_VARIABLE}) is not YYYY-MM-DD"
            ) from None
    last = pd.to_datetime(transactions["occurred_at"]).max()
    return (last.normalize() + pd.Timedelta(days=1)).date()
