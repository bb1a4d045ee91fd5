"""Propensity to respond: one pooled calibrated booster over every offer type × channel.

``offer_type`` and ``channel`` are categorical features, so each offer × channel gets its
own response curve while sharing what customers have in common, which a 25-way split of a
few thousand contacts per cell cannot learn. :func:`score_offer_channels` scores each
customer once per offer × channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from cx_pipelines.ml.supervised.base import stacked_offer_channel_scores
from cx_pipelines.ml.supervised.classifier import CalibratedBoostingClassifier


class PropensityClassifier(CalibratedBoostingClassifier):
    """P(respond | contacted with this offer on this channel), calibrated."""

    kind = "propensity"


def score_offer_channels(
    model: CalibratedBoostingClassifier,
    customers: pd.DataFrame,
    *,
    offer_types: Sequence[str],
    channels: Sequence[str],
    prefix: str = "propensity",
) -> pd.DataFrame:
    """One row per customer, one column ``<prefix>__<offer>__<channel>`` per combination."""
    return stacked_offer_channel_scores(
        model.predict_probability,
        customers,
        offer_types=offer_types,
        channels=channels,
        prefix=prefix,
    )
