"""Attrition risk: P(an active customer makes no purchase in the next window), calibrated.

Trained on customers' features at (end − 2 × window) with the following window as label
and judged at (end − window) (``training_data.attrition_split``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines.ml.supervised.classifier import CalibratedBoostingClassifier


class AttritionClassifier(CalibratedBoostingClassifier):
    """P(no purchase in the next window | features at the cutoff), calibrated."""

    kind = "attrition"


def attrition_risk(model: CalibratedBoostingClassifier, features: pd.DataFrame) -> pd.Series:
    """Risk per customer_id; null for customers who never bought (attrition is undefined)."""
    risk = pd.Series(model.predict_probability(features), index=features["customer_id"].to_numpy())
    buyers = features["purchases_total"].to_numpy() > 0
    return risk.where(buyers, np.nan)
