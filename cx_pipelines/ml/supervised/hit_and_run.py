"""Hit-and-run: one-time buyers ranked by the probability of buying again within the horizon.

For a one-time buyer the MBG/NBD probability depends only on the time since the first
purchase, so the pure BTYD ranking equals the recency baseline. Two models add who the
customer is: a BG/NBD per customer type (each type its own purchase-rate mixture), and
:class:`HitAndRunClassifier`, a booster on the BTYD signal plus attributes, holdings, first
purchase, channel mix, interactions and past campaign responses; see
:mod:`.btyd_covariates` for how they are judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from cx_pipelines.ml.lifetime_features import hit_and_run_frame
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.btyd_covariates import LifetimeFamily, register_family
from cx_pipelines.ml.supervised.classifier import CalibratedBoostingClassifier


class HitAndRunClassifier(CalibratedBoostingClassifier):
    """P(a one-time buyer buys again within the horizon | BTYD signal and covariates)."""

    kind = "hit_and_run"


def build_frame(
    tables: Mapping[str, pd.DataFrame],
    *,
    spec: ModelSpec,
    cutoff: datetime,
    label_end: datetime | None,
) -> pd.DataFrame:
    """One-time buyers at ``cutoff`` (label ``spec.target`` up to ``label_end`` when given)."""
    frame = hit_and_run_frame(
        dict(tables), cutoff=cutoff, horizon_days=spec.holdout_days, label_end=label_end
    )
    return frame.rename(columns={"returned": spec.target})


FAMILY = register_family(
    LifetimeFamily(
        kind="hit_and_run",
        id_column="customer_id",
        btyd_column="btyd_probability_in_horizon",
        segmented_btyd_column="btyd_bg_type_probability_in_horizon",
        recency_column="T",
        build=build_frame,
    )
)
