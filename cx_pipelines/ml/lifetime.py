"""Customer-lifetime scores built on the BTYD models: hit-and-run, dormancy, future spend.

Plain functions over plain DataFrames (``rfm_summary`` output or transaction logs), so the
Dagster assets, notebooks and tests share them. Each has a holdout evaluation: fit as of a
cut-off date, score, and compare with what customers actually did after it, next to a
simple baseline.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cx_pipelines.ml.btyd import BetaGeoModel, GammaGammaModel, ModifiedBetaGeoModel
from cx_pipelines.ml.btyd.pareto_nbd import ParetoNBDModel
from cx_pipelines.ml.errors import EvaluationError, TrainingDataError
from cx_pipelines.ml.rfm import calibration_and_holdout_data, rfm_summary

_DAYS_PER_WEEK = 7.0


def rank_by(frame: pd.DataFrame, score: str) -> pd.DataFrame:
    """Sort by descending score (ties by id, for a stable order) and number from 1."""
    frame = frame.sort_values([score, frame.columns[0]], ascending=[False, True], kind="stable")
    frame = frame.reset_index(drop=True)
    frame["rank"] = np.arange(1, len(frame) + 1, dtype="int64")
    return frame


def hit_and_run_scores(
    rfm: pd.DataFrame, *, model: ModifiedBetaGeoModel | ParetoNBDModel | None = None
) -> pd.DataFrame:
    """One-time buyers (frequency 0) ranked by the probability of ever buying again.

    ``model`` defaults to an MBG/NBD fitted on all of ``rfm``. Under MBG/NBD dropout happens
    only at purchase occasions (including the first), so for x = 0
    P(ever again) = P(alive) = 1 / (1 + a/b * ((alpha + T) / alpha)^r). A fitted
    ``ParetoNBDModel`` gives P(alive) * E[lambda / (lambda + mu) | alive] instead. Plain
    BG/NBD is refused: it assumes every one-time buyer is alive (probability 1).
    Columns: ``customer_id, probability_ever_again, rank`` (1 = most likely to return).
    """
    if type(model) is BetaGeoModel:
        raise TrainingDataError(
            "BG/NBD assumes one-time buyers are alive (probability 1 for all of them); "
            "pass a ModifiedBetaGeoModel or ParetoNBDModel"
        )
    if model is None:
        model = ModifiedBetaGeoModel().fit(rfm)
    one_time = rfm[rfm["frequency"] == 0]
    probability = model.expected_probability_ever_again(one_time)
    frame = pd.DataFrame(
        {
            "customer_id": probability.index.to_numpy(),
            "probability_ever_again": probability.to_numpy(),
        }
    )
    return rank_by(frame, "probability_ever_again")


def _account_rfm(
    account_transactions: pd.DataFrame, *, as_of: object, account_id_col: str, datetime_col: str
) -> pd.DataFrame:
    rfm = rfm_summary(
        account_transactions,
        customer_id_col=account_id_col,
        datetime_col=datetime_col,
        monetary_value_col=None,
        observation_period_end=as_of,
        time_unit="W",
    )
    return rfm.rename(columns={"customer_id": "account_id"})


def dormancy_scores(
    account_transactions: pd.DataFrame,
    *,
    as_of: object,
    dormant_days: int = 90,
    horizon_days: int = 90,
    account_id_col: str = "account_id",
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
    model: BetaGeoModel | None = None,
) -> pd.DataFrame:
    """Accounts with no spending in the last ``dormant_days`` ranked by chance of reactivation.

    An MBG/NBD (default; accounts that spent once may be dead too) is fitted on every
    account's spending up to ``as_of`` (time in weeks); the score is its probability of at
    least one spend in the next ``horizon_days``:
    P(alive) * (1 - ((alpha + T) / (alpha + T + t))^(r + x)). Accounts that never spent
    have no history to score and are not listed. Columns: ``account_id, customer_id,
    days_since_last_spend, probability_reactivation, rank``.
    """
    if dormant_days < 1 or horizon_days < 1:
        raise TrainingDataError("dormant_days and horizon_days must be at least 1")
    for column in (account_id_col, customer_id_col):
        if column not in account_transactions.columns:
            raise TrainingDataError(f"account_transactions has no column {column!r}")
    rfm = _account_rfm(
        account_transactions, as_of=as_of, account_id_col=account_id_col, datetime_col=datetime_col
    )
    if model is None:
        model = ModifiedBetaGeoModel().fit(rfm.rename(columns={"account_id": "customer_id"}))
    days_since = np.rint((rfm["T"] - rfm["recency"]) * _DAYS_PER_WEEK).astype("int64")
    dormant = rfm[days_since.to_numpy() >= dormant_days]
    probability = model.expected_probability_of_transaction(
        dormant.rename(columns={"account_id": "customer_id"}),
        future_t=horizon_days / _DAYS_PER_WEEK,
    )
    owners = (
        account_transactions[[account_id_col, customer_id_col]]
        .drop_duplicates(account_id_col)
        .set_index(account_id_col)[customer_id_col]
    )
    frame = pd.DataFrame(
        {
            "account_id": dormant["account_id"].to_numpy(),
            "customer_id": owners.reindex(dormant["account_id"].to_numpy()).to_numpy(),
            "days_since_last_spend": days_since[dormant.index].to_numpy(),
            "probability_reactivation": probability.to_numpy(),
        }
    )
    return rank_by(frame, "probability_reactivation")


def spend_forecast(
    rfm: pd.DataFrame,
    *,
    periods: int,
    discount_rate: float,
    period_length: float = 4.345,
    transaction_model: BetaGeoModel | ParetoNBDModel | None = None,
    spend_model: GammaGammaModel | None = None,
) -> pd.DataFrame:
    """Expected transactions, spend and discounted CLV over ``periods`` periods per customer.

    ``rfm`` needs ``customer_id, frequency, recency, T, monetary_value`` with time in the
    unit the models were fitted in (weeks by default; ``period_length`` 4.345 weeks is a
    month). Models default to BG/NBD and Gamma-Gamma fitted on ``rfm``. Columns:
    ``customer_id, expected_transactions, expected_average_spend, expected_spend, clv,
    probability_alive``.
    """
    if periods < 1:
        raise TrainingDataError(f"periods must be at least 1, got {periods}")
    transaction_model = transaction_model or BetaGeoModel().fit(rfm)
    spend_model = spend_model or GammaGammaModel().fit(rfm)
    horizon = periods * period_length
    transactions = transaction_model.expected_transactions(rfm, future_t=horizon)
    spend = spend_model.expected_average_spend(rfm)
    clv = spend_model.expected_customer_lifetime_value(
        transaction_model,
        rfm,
        periods=periods,
        period_length=period_length,
        discount_rate=discount_rate,
    )
    return pd.DataFrame(
        {
            "customer_id": rfm["customer_id"].to_numpy(),
            "expected_transactions": transactions.to_numpy(),
            "expected_average_spend": spend.to_numpy(),
            "expected_spend": transactions.to_numpy() * spend.to_numpy(),
            "clv": clv.to_numpy(),
            "probability_alive": transaction_model.expected_probability_alive(rfm).to_numpy(),
        }
    )


# -- holdout evaluation ----------------------------------------------------------------


def ranking_auc(scores: np.ndarray, outcomes: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` against observed 0/1 ``outcomes``."""
    outcomes = np.asarray(outcomes, dtype=bool)
    if outcomes.all() or not outcomes.any():
        raise EvaluationError(
            "The holdout outcome is the same for every row, so a ranking cannot be evaluated; "
            "use a longer holdout or more customers"
        )
    return float(roc_auc_score(outcomes, scores))


def _calibration_rfm(
    transactions: pd.DataFrame,
    *,
    calibration_period_end: object,
    observation_period_end: object,
    customer_id_col: str,
    datetime_col: str,
    monetary_value_col: str | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(calibration/holdout data, the calibration part named like an RFM summary)."""
    data = calibration_and_holdout_data(
        transactions,
        calibration_period_end=calibration_period_end,
        observation_period_end=observation_period_end,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
    )
    rfm = data.rename(
        columns={"frequency_cal": "frequency", "recency_cal": "recency", "T_cal": "T"}
    )
    return data, rfm


def evaluate_hit_and_run(
    transactions: pd.DataFrame,
    *,
    calibration_period_end: object,
    observation_period_end: object,
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
    model: ModifiedBetaGeoModel | ParetoNBDModel | None = None,
) -> dict[str, float]:
    """AUC of the hit-and-run ranking against 'bought again in the holdout'.

    The baseline ranks one-time buyers by how recently they first bought (smaller T first).
    """
    _, rfm = _calibration_rfm(
        transactions,
        calibration_period_end=calibration_period_end,
        observation_period_end=observation_period_end,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=None,
    )
    scores = hit_and_run_scores(rfm, model=model).set_index("customer_id")
    one_time = rfm[rfm["frequency"] == 0].set_index("customer_id")
    returned = one_time["frequency_holdout"].to_numpy() > 0
    probability = scores["probability_ever_again"].reindex(one_time.index).to_numpy()
    return {
        "n_customers": float(len(one_time)),
        "holdout_return_rate": float(returned.mean()),
        "auc": ranking_auc(probability, returned),
        "baseline_auc": ranking_auc(-one_time["T"].to_numpy(), returned),
    }


def evaluate_dormancy(
    account_transactions: pd.DataFrame,
    *,
    as_of: object,
    dormant_days: int = 90,
    horizon_days: int = 90,
    account_id_col: str = "account_id",
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
) -> dict[str, float]:
    """AUC of the dormancy ranking against 'spent again within horizon_days after as_of'.

    The baseline ranks dormant accounts by days since their last spend (fewer first).
    """
    scores = dormancy_scores(
        account_transactions[
            pd.to_datetime(account_transactions[datetime_col]) <= pd.Timestamp(as_of)
        ],
        as_of=as_of,
        dormant_days=dormant_days,
        horizon_days=horizon_days,
        account_id_col=account_id_col,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
    )
    when = pd.to_datetime(account_transactions[datetime_col])
    start = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    in_horizon = (when >= start) & (when < start + pd.Timedelta(days=horizon_days))
    active = set(account_transactions.loc[in_horizon, account_id_col].unique())
    reactivated = scores["account_id"].isin(active).to_numpy()
    return {
        "n_accounts": float(len(scores)),
        "reactivation_rate": float(reactivated.mean()) if len(scores) else 0.0,
        "auc": ranking_auc(scores["probability_reactivation"].to_numpy(), reactivated),
        "baseline_auc": ranking_auc(-scores["days_since_last_spend"].to_numpy(), reactivated),
    }


def evaluate_spend_forecast(
    transactions: pd.DataFrame,
    *,
    calibration_period_end: object,
    observation_period_end: object,
    customer_id_col: str = "customer_id",
    datetime_col: str = "occurred_at",
    monetary_value_col: str = "amount",
    model: BetaGeoModel | ParetoNBDModel | None = None,
) -> dict[str, float]:
    """Mean absolute error of forecast holdout transactions per customer, and totals.

    The baseline forecasts each customer's calibration rate, frequency / T, times the
    holdout length (0 for customers with T = 0).
    """
    data, rfm = _calibration_rfm(
        transactions,
        calibration_period_end=calibration_period_end,
        observation_period_end=observation_period_end,
        customer_id_col=customer_id_col,
        datetime_col=datetime_col,
        monetary_value_col=monetary_value_col,
    )
    model = model or BetaGeoModel().fit(rfm)
    duration = float(data["duration_holdout"].iloc[0])
    forecast = model.expected_transactions(rfm, future_t=duration).to_numpy()
    actual = data["frequency_holdout"].to_numpy(dtype="float64")
    T = rfm["T"].to_numpy()
    baseline = (
        np.where(T > 0, rfm["frequency"].to_numpy() / np.where(T > 0, T, 1.0), 0.0) * duration
    )
    return {
        "n_customers": float(len(data)),
        "mae": float(np.mean(np.abs(forecast - actual))),
        "baseline_mae": float(np.mean(np.abs(baseline - actual))),
        "forecast_total": float(forecast.sum()),
        "actual_total": float(actual.sum()),
    }
