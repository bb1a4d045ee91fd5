"""Where each customer id sits in the customers frame, found by fingerprints, not Python objects.

The same 64-bit fingerprint gives the test-group draw (see ``common.test_group_draw``);
a second, independent one makes equal pairs a safe stand-in for equal ids.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cx_pipelines.engine.evaluation import shared as c
from cx_pipelines.engine.language.errors import EvaluationError


class CustomerIndex:
    """Fingerprints of the customers frame's ids: draws, duplicate check, id → row lookup."""

    def __init__(self, customer_ids: pd.Series, salt: str) -> None:
        self.salt = salt
        self.size = len(customer_ids)
        self.customer_ids = customer_ids.array
        self.fingerprints, self.checks = c.fingerprints(customer_ids, salt)
        if customer_ids.isna().any():
            raise EvaluationError("column customer_id of the customers frame has empty entries")
        self.draws = c.draws_of(self.fingerprints)
        order = np.argsort(self.fingerprints)
        ordered, ordered_checks = self.fingerprints[order], self.checks[order]
        same = ordered[1:] == ordered[:-1]
        if same.any():
            pairs = np.flatnonzero(same)
            left, right = order[pairs], order[pairs + 1]
            if np.any(self.checks[left] == self.checks[right]):
                raise EvaluationError(
                    "column customer_id of the customers frame has duplicate entries"
                )
        self.collision = bool(same.any())  # two ids, one fingerprint: look up by value instead
        self.fingerprint_order, self.ordered_fingerprints, self.ordered_checks = (
            order,
            ordered,
            ordered_checks,
        )

    def owner_index(self, customer_ids: Any) -> np.ndarray:
        """Row of each given customer id in the customers frame (-1 when absent)."""
        size = len(customer_ids)
        if size == 0 or self.size == 0:
            return np.full(size, -1, dtype=np.int64)
        if self.collision:
            return pd.Index(self.customer_ids).get_indexer(np.asarray(customer_ids))
        # rows grouped by customer (the usual account extract) are looked up once per run
        text = c.arrow_text(customer_ids)
        change = np.ones(size, dtype=bool)
        if size > 1:
            differs = pc.not_equal(text.slice(1), text.slice(0, size - 1))
            change[1:] = np.asarray(pc.fill_null(differs, True))
        starts = np.flatnonzero(change)
        run_wanted, run_checks = c.fingerprints(text.take(pa.array(starts)), self.salt)
        if (
            len(starts) == self.size
            and np.array_equal(run_wanted, self.fingerprints)
            and np.array_equal(run_checks, self.checks)
        ):
            # grouped in the customers' own order: no search needed
            return np.repeat(np.arange(self.size), np.diff(np.append(starts, size)))
        position = np.minimum(np.searchsorted(self.ordered_fingerprints, run_wanted), self.size - 1)
        hit = (self.ordered_fingerprints[position] == run_wanted) & (
            self.ordered_checks[position] == run_checks
        )
        found = np.where(hit, self.fingerprint_order[position], -1)
        return np.repeat(found, np.diff(np.append(starts, size)))
