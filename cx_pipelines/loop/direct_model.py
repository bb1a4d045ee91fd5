"""A better direct model for doubly robust: the champion scores recalibrated on the log.

Doubly robust is unbiased where the logged arms are randomised whatever the direct model
predicts; the model sets its variance there, and it is all there is for what the log could
never show (unsupported actions, and the other arm of a unit whose arm was fixed before the
run). The champion models are trained on one-off campaigns and learn the contact fatigue
weakly, so the log's own outcomes are used to correct them, per arm, by a logistic
regression on the matched logged rows (logged offer and channel = the candidate's):

* treated: ``logit P(Y=1) = a_pair + b · logit μ1 + f · recent``, ``recent`` the customer's
  treated contacts in the 28 days before the decision (the platform's own contact
  history, the fatigue feature's rule);
* control: ``logit P(Y=1) = a_pair + b · logit μ0``.

**Cross-fitting**: the units are split in two folds by customer id (even / odd); a unit's
recalibrated scores come from the fit on the other fold, so its own outcome never enters
its prediction and the residual terms keep their zero mean. An arm with fewer than
``min_rows`` matched rows or no response in a fold keeps the models' scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

FOLDS = 2
MIN_ROWS = 50
EPSILON = 1e-6


def _pair(frame: pd.DataFrame) -> pd.Series:
    return frame["offer_type"].astype(str) + "|" + frame["channel"].astype(str)


def _design(score: np.ndarray, pairs: pd.Series, known: list[str], extra: np.ndarray | None):
    columns = [logit(np.clip(score, EPSILON, 1 - EPSILON))]
    columns += [(pairs == pair).to_numpy(float) for pair in known]
    if extra is not None:
        columns.append(extra.astype(float))
    return np.column_stack(columns)


def _fit_predict(
    train: np.ndarray, outcome: np.ndarray, predict: np.ndarray, fallback: np.ndarray
) -> np.ndarray:
    if len(outcome) < MIN_ROWS or outcome.min() == outcome.max():
        return fallback
    model = LogisticRegression(C=10.0, max_iter=1_000)
    model.fit(train, outcome)
    return model.predict_proba(predict)[:, 1]


def recalibrated(log: pd.DataFrame, candidate: pd.DataFrame, *, recent: np.ndarray) -> pd.DataFrame:
    """The candidate (``off_policy.CANDIDATE_COLUMNS``) with ``p_response`` (μ1) and
    ``uplift`` (μ1 − μ0) recalibrated on the log's matched rows, cross-fitted by customer.

    ``recent``: per candidate row, the customer's recent treated contacts at the decision.
    """
    chosen = candidate[candidate["campaign_id"].notna()].reset_index(drop=True)
    recent = np.asarray(recent, dtype=float)[candidate["campaign_id"].notna().to_numpy()]
    mu1 = np.clip(chosen["p_response"].to_numpy(float), 0.0, 1.0)
    mu0 = np.clip(mu1 - chosen["uplift"].to_numpy(float), 0.0, 1.0)
    scored = ~(np.isnan(mu1) | np.isnan(mu0))
    pairs = _pair(chosen)
    logged = log.set_index("customer_id")
    logged_pair = chosen["customer_id"].map(_pair(log).set_axis(log["customer_id"]))
    group = chosen["customer_id"].map(logged["group"])
    outcome = chosen["customer_id"].map(logged["responded"]).astype(float)
    matched = (logged_pair == pairs).to_numpy() & scored
    fold = chosen["customer_id"].to_numpy(np.int64) % FOLDS
    known = sorted(set(pairs[matched]))
    new1, new0 = mu1.copy(), mu0.copy()
    arms = (("treated", mu1, recent, new1), ("control", mu0, None, new0))
    for arm, score, extra, target in arms:
        rows = matched & (group == arm).to_numpy()
        features = _design(np.nan_to_num(score), pairs, known, extra)
        for held_out in range(FOLDS):
            train = rows & (fold != held_out)
            predict = scored & (fold == held_out)
            target[predict] = _fit_predict(
                features[train], outcome.to_numpy()[train], features[predict], score[predict]
            )
    return chosen.assign(p_response=new1, uplift=new1 - new0)
