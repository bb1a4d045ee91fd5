"""Is the uplift model's posterior spread honest? Each row's error against the truth in units
of its own posterior standard deviation, per campaign's offer x channel.

    python benchmarks/uplift_spread.py --home /tmp/loop/seed-1/cx

Reads the last ``customer_scores`` of a CX_HOME the closed loop ran in, scored by an uplift
model fitted with ``spread_draws`` (its ``uplift_sd__<offer>__<channel>`` columns), and the
world's truth: the true uplift of a contact on the scoring date is
``logistic(logit(p_treated) - 0.35 x recent_treated_contacts) - p_control`` (the simulator's
fatigue). Per offer x channel of the active campaigns: the mean true and predicted uplift,
the mean absolute error, the mean posterior sd, the share of rows whose error is within one
and two sds (0.68 and 0.95 if the posterior is calibrated and the model unbiased) and the
correlation of the predicted with the true uplift. Thompson draws (``thompson_scale``) rank
on ``uplift + scale x sd x z``: where the sd is as large as the error, a draw is about as far
from the truth again. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd


def spread_table(home: Path, scores: pd.DataFrame, pairs: list[tuple[str, str]]) -> pd.DataFrame:
    from cx_pipelines.world.simulator import FATIGUE_LOG_ODDS_PER_CONTACT

    truth = pd.read_parquet(home / "world" / "truth.parquet")
    truth = truth.set_index("customer_id").reindex(scores["customer_id"])
    recent = scores["recent_treated_contacts"].to_numpy(float)
    rows = []
    for offer, channel in pairs:
        spread = scores[f"uplift_sd__{offer}__{channel}"].to_numpy(float)
        if np.isnan(spread).all():
            raise SystemExit(
                f"{home}: customer_scores has no uplift_sd__{offer}__{channel}; the uplift "
                "model must be fitted with spread_draws (models/uplift.yaml)"
            )
        treated = truth[f"p_treated__{offer}__{channel}"].to_numpy(float)
        log_odds = np.log(treated / (1 - treated)) - FATIGUE_LOG_ODDS_PER_CONTACT * recent
        true = 1 / (1 + np.exp(-log_odds)) - truth[f"p_control__{offer}__{channel}"].to_numpy(float)
        predicted = scores[f"uplift__{offer}__{channel}"].to_numpy(float)
        z = (predicted - true) / spread
        rows.append(
            {
                "offer": offer,
                "channel": channel,
                "true_uplift": true.mean(),
                "predicted_uplift": predicted.mean(),
                "mean_absolute_error": np.abs(predicted - true).mean(),
                "mean_sd": spread.mean(),
                "within_1_sd": float(np.mean(np.abs(z) < 1)),
                "within_2_sd": float(np.mean(np.abs(z) < 2)),
                "correlation": float(np.corrcoef(predicted, true)[0, 1]),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="a closed-loop CX_HOME")
    arguments = parser.parse_args()
    catalog = pd.read_parquet(arguments.home / "warehouse" / "campaign_targets.parquet")
    pairs = sorted(set(zip(catalog["offer_type"], catalog["channel"], strict=True)))
    scores = pd.read_parquet(arguments.home / "warehouse" / "customer_scores.parquet")
    table = spread_table(arguments.home, scores, pairs)
    print(f"uplift model {scores['uplift_model_version'].iloc[0]}, {len(scores):,} customers")
    print(table.to_string(index=False, float_format=lambda value: f"{value:.4f}"))
    print(
        json.dumps(
            {
                "uplift_model_version": scores["uplift_model_version"].iloc[0],
                "within_1_sd": round(float(table["within_1_sd"].mean()), 3),
                "within_2_sd": round(float(table["within_2_sd"].mean()), 3),
                "mean_absolute_error": round(float(table["mean_absolute_error"].mean()), 5),
                "mean_sd": round(float(table["mean_sd"].mean()), 5),
                "pairs": table.round(5).to_dict(orient="records"),
            }
        )
    )


if __name__ == "__main__":
    main()
