"""Dormancy: accounts without spending for a while ranked by the chance they spend again.

The pure BTYD ranking fits an MBG/NBD on accounts. :class:`DormancyClassifier` adds the
owner's own BTYD signal (across all their accounts, and thinned to this account by its
share of the owner's purchases), the account's product and the owner's attributes and
interactions; see :mod:`.btyd_covariates` for how it is judged.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import pandas as pd

from cx_pipelines.ml.lifetime_features import dormancy_frame
from cx_pipelines.ml.specs import ModelSpec
from cx_pipelines.ml.supervised.btyd_covariates import LifetimeFamily, register_family
from cx_pipelines.ml.supervised.classifier import CalibratedBoostingClassifier


class DormancyClassifier(CalibratedBoostingClassifier):
    """P(a dormant account spends within the horizon | BTYD signal and covariates)."""

    kind = "dormancy"


def dormancy_windows(spec: ModelSpec) -> tuple[int, int]:
    """(days without spending that make an account dormant, horizon days)."""
    options = spec.estimator_options
    return int(options.get("dormant_days", 90)), int(options.get("horizon_days", 90))


def build_frame(
    tables: Mapping[str, pd.DataFrame],
    *,
    spec: ModelSpec,
    cutoff: datetime,
    label_end: datetime | None,
) -> pd.DataFrame:
    """Accounts dormant at ``cutoff`` (label ``spec.target`` up to ``label_end`` when given)."""
    dormant_days, horizon_days = dormancy_windows(spec)
    frame = dormancy_frame(
        dict(tables),
        cutoff=cutoff,
        dormant_days=dormant_days,
        horizon_days=horizon_days,
        label_end=label_end,
    )
    return frame.rename(columns={"reactivated": spec.target})


FAMILY = register_family(
    LifetimeFamily(
        kind="dormancy",
        id_column="account_id",
        btyd_column="btyd_probability_in_horizon",
        segmented_btyd_column="owner_btyd_bg_type_account_probability",
        recency_column="days_since_last_spend",
        build=build_frame,
    )
)
