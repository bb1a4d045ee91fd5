"""Paired bootstrap of a holdout metric: how sure is it that the challenger is worse?

The promotion gate compares a challenger and the champion on one holdout. With a rare
response (a few hundred responders, a control arm of 10 %) the difference of two Qini
coefficients on one holdout is mostly noise: the point rule ("higher wins") then keeps a
stale champion about half the time even when the challenger, trained on more and newer
data, is as good. Resampling the holdout's rows with replacement and scoring *both* models
on each resample (paired: the same rows for both) gives the spread of the difference
(Efron & Tibshirani 1993, ch. 16); the rule ``not_credibly_worse`` keeps the champion only
when the challenger is worse in at least ``confidence`` of the resamples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

RowMetric = Callable[[np.ndarray, np.ndarray], float]
"""``metric(predictions, rows)``: the metric of ``predictions`` on the holdout rows ``rows``
(indices, repeated when a resample draws a row twice)."""


@dataclass(frozen=True)
class PairedDifference:
    """Challenger minus champion (in the metric's "better" direction) on the holdout."""

    observed: float
    upper: float  # the ``confidence`` quantile of the resampled differences
    share_worse: float  # share of resamples in which the challenger is worse
    resamples: int
    confidence: float


def paired_difference(
    metric: RowMetric,
    challenger: np.ndarray,
    champion: np.ndarray,
    *,
    resamples: int,
    confidence: float,
    rows: np.ndarray | None = None,
    maximize: bool = True,
    random_state: int = 0,
) -> PairedDifference:
    """Bootstrap the difference ``metric(challenger) - metric(champion)`` over the holdout
    rows ``rows`` (indices; default every row), negated when the metric is better low;
    resamples whose metric is undefined (NaN, e.g. a resample without a control responder)
    are left out."""
    if len(challenger) != len(champion):
        raise ValueError(
            f"challenger and champion predictions differ in length "
            f"({len(challenger)} vs {len(champion)})"
        )
    pool = np.arange(len(challenger)) if rows is None else np.asarray(rows)
    if len(pool) == 0:
        raise ValueError("the holdout has no rows to compare the models on")
    sign = 1.0 if maximize else -1.0
    observed = sign * (metric(challenger, pool) - metric(champion, pool))
    rng = np.random.default_rng(random_state)
    differences = []
    for _ in range(resamples):
        drawn = pool[rng.integers(0, len(pool), len(pool))]
        difference = sign * (metric(challenger, drawn) - metric(champion, drawn))
        if np.isfinite(difference):
            differences.append(difference)
    if not differences:
        raise ValueError("the metric is undefined on every resample of the holdout")
    values = np.asarray(differences)
    return PairedDifference(
        observed=float(observed),
        upper=float(np.quantile(values, confidence)),
        share_worse=float((values < 0).mean()),
        resamples=len(values),
        confidence=confidence,
    )
