"""Ingestion settings read from the environment at run time."""

from __future__ import annotations

import os

from cx_pipelines.ingestion.errors import InvalidThresholdError

DEFAULT_QUARANTINE_THRESHOLD = 0.05
"""Largest acceptable share of a table's rows in quarantine before downstream assets stop."""

THRESHOLD_VARIABLE = "CX_QUARANTINE_THRESHOLD"


def quarantine_threshold(value: float | None = None) -> float:
    """``value`` if given, else ``CX_QUARANTINE_THRESHOLD``, else 5 %; checked to lie in [0, 1]."""
    source = "quarantine threshold"
    if value is None:
        text = os.environ.get(THRESHOLD_VARIABLE)
        if not text:
            return DEFAULT_QUARANTINE_THRESHOLD
        source = THRESHOLD_VARIABLE
        try:
            value = float(text)
        except ValueError:
            raise InvalidThresholdError(
                f"{THRESHOLD_VARIABLE}={text!r} is not a number; give a fraction such as 0.05"
            ) from None
    if not 0.0 <= value <= 1.0:
        raise InvalidThresholdError(
            f"The {source} must be a fraction between 0 and 1 (0.05 = 5 %), got {value}"
        )
    return value
