"""Model cards: what a registered version was trained on and how good it is, in one look.

A card holds the training and holdout windows, the holdout metric, the baseline's metric on
the same rows, and, when the data come from the synthetic world (its ``truth.parquet``
is present), the oracle's metric: the same rows scored with the true probabilities. It is
logged as ``model_card.json`` on the training run and copied into version tags
(``card.*``), so the registry's version page answers "how good is the champion".
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

from cx_pipelines import config
from cx_pipelines.ml import evaluation, registry, training_data
from cx_pipelines.ml.errors import EvaluationError, TrainingDataError
from cx_pipelines.ml.specs import ModelSpec

CARD_ARTIFACT = "model_card.json"


@dataclass(frozen=True)
class ModelCard:
    """One registered version's card."""

    model: str
    spec: str
    metric: str
    holdout_metric: float
    baseline: str
    baseline_metric: float | None
    oracle_metric: float | None
    windows: dict[str, str]
    estimator: str
    notes: list[str] = field(default_factory=list)

    def tags(self) -> dict[str, str]:
        """Version tags (``card.*``) carrying the card's figures."""
        tags = {
            "card.metric": self.metric,
            "card.holdout_metric": f"{self.holdout_metric:.6g}",
            "card.baseline": self.baseline,
            "card.baseline_metric": _number(self.baseline_metric),
            "card.oracle_metric": _number(self.oracle_metric),
            "card.estimator": self.estimator,
        }
        if self.oracle_metric:
            tags["card.share_of_oracle"] = f"{self.holdout_metric / self.oracle_metric:.4f}"
        tags |= {f"card.window.{key}": value for key, value in self.windows.items()}
        return tags


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def world_truth() -> pd.DataFrame | None:
    """The synthetic world's ground truth when CX_HOME holds one (not for CDNOW or a bank)."""
    path = config.world_dir() / "truth.parquet"
    return pd.read_parquet(path) if path.exists() else None


# --- Oracles of the lifetime models: the holdout rows scored with the truth ----------------


def oracle_hit_and_run(holdout: pd.DataFrame, truth: pd.DataFrame, *, weeks: float) -> np.ndarray:
    """P(a purchase within ``weeks`` | λ): a one-time buyer is alive (dropout follows repeat
    purchases only), so 1 − exp(−λ·weeks)."""
    rate = truth.set_index("customer_id")["purchase_rate"].reindex(holdout["customer_id"])
    if rate.isna().any():
        raise TrainingDataError(f"{int(rate.isna().sum())} customers have no ground truth")
    return 1 - np.exp(-rate.to_numpy() * weeks)


def oracle_dormancy(holdout: pd.DataFrame, truth: pd.DataFrame, *, horizon_days: int) -> np.ndarray:
    """P(alive at the cutoff) · (1 − exp(−λ · account share · horizon)), the share being the
    account's part of its owner's past purchases (``account_spend_share``)."""
    indexed = truth.set_index("customer_id")
    owner = holdout["customer_id"].to_numpy()
    cutoff = pd.to_datetime(holdout["cutoff"]).to_numpy()
    dropped = pd.to_datetime(indexed["dropped_out_at"]).reindex(owner).to_numpy()
    alive = ~(~pd.isna(dropped) & (dropped <= cutoff))
    rate = indexed["purchase_rate"].reindex(owner).to_numpy()
    share = holdout["account_spend_share"].to_numpy(dtype=float)
    return alive * (1 - np.exp(-rate * share * horizon_days / 7))


def oracle_scores(spec: ModelSpec, holdout: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray | None:
    """The oracle's probability (or uplift) for every holdout row of ``spec``'s model."""
    if spec.kind == "propensity":
        return training_data.oracle_response(holdout, truth)
    if spec.kind == "uplift":
        return training_data.oracle_uplift(holdout, truth)
    if spec.kind == "attrition":
        return training_data.oracle_attrition(holdout, truth, window_days=spec.holdout_days)
    if spec.kind == "hit_and_run":
        return oracle_hit_and_run(holdout, truth, weeks=spec.holdout_days / 7)
    if spec.kind == "dormancy":
        horizon = int(spec.estimator_options.get("horizon_days", spec.holdout_days))
        return oracle_dormancy(holdout, truth, horizon_days=horizon)
    return None


def oracle_metric(spec: ModelSpec, holdout: pd.DataFrame, truth: pd.DataFrame) -> float | None:
    """The spec's metric of the oracle on the holdout (None when it cannot be computed)."""
    try:
        scores = oracle_scores(spec, holdout, truth)
        if scores is None:
            return None
        if spec.metric == "qini":
            return evaluation.qini_coefficient(holdout[spec.target], holdout["treated"], scores)
        if spec.metric == "auc":
            return evaluation.auc(holdout[spec.target], scores)
    except (TrainingDataError, EvaluationError, KeyError):
        return None
    return None


def build_card(
    spec: ModelSpec,
    *,
    metrics: Mapping[str, float],
    holdout: pd.DataFrame,
    windows: Mapping[str, object],
    estimator: str,
    baseline: str = "baseline",
    notes: list[str] | None = None,
    truth: pd.DataFrame | None = None,
) -> ModelCard:
    """The card of a model judged on ``holdout`` (``metrics`` from its evaluation report;
    ``baseline_<metric>`` there is the baseline's figure)."""
    baseline_value = metrics.get(f"baseline_{spec.metric}")
    return ModelCard(
        model=spec.registered_name,
        spec=spec.name,
        metric=spec.metric,
        holdout_metric=float(metrics[spec.metric]),
        baseline=baseline,
        baseline_metric=None if baseline_value is None else float(baseline_value),
        oracle_metric=oracle_metric(spec, holdout, truth) if truth is not None else None,
        windows={key: str(value) for key, value in windows.items()},
        estimator=estimator,
        notes=list(notes or []),
    )


def log_card(
    card: ModelCard, *, run_id: str, version: str, tracking_uri: str | None = None
) -> None:
    """Attach ``card`` to the training run (``model_card.json``) and to the version's tags."""
    registry.configure(tracking_uri)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / CARD_ARTIFACT
        path.write_text(json.dumps(asdict(card), indent=2, sort_keys=True))
        mlflow.MlflowClient(tracking_uri=tracking_uri).log_artifact(run_id, str(path))
    registry.set_version_tags(card.model, version, card.tags(), tracking_uri=tracking_uri)


def read_card(model_name: str, version: str, *, tracking_uri: str | None = None) -> dict:
    """The card of a registered version, from its tags (``card.`` prefix removed)."""
    tags = registry.client(tracking_uri).get_model_version(model_name, version).tags
    return {
        key.removeprefix("card."): value for key, value in tags.items() if key.startswith("card.")
    }
