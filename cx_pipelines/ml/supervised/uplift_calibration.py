"""Offer × channel recalibration of an uplift model's two arms, fitted on out-of-fold scores.

A penalised learner shrinks what an offer or a channel has shown little of towards the
common terms. Where responses are rare and the pair's own effect differs from the common
one (a mortgage's effect on the log-odds against a savings offer's), the predicted uplift
stays too small, and a high-margin campaign is under-contacted. This layer corrects the
scores per offer × channel on the randomised rows of the history, as Platt scaling does for
one classifier (Platt 1999), with the model's out-of-fold logits as offsets::

    control:  logit P = b + c[offer]
    treated:  logit P = b + c[offer] + a[offer] + a[channel] + a[offer, channel]
                        + (1 + d[offer]) · e

``b`` is the model's control-arm logit and ``e`` its treatment effect on the logit (treated
logit minus control logit), both predicted for rows the model was not fitted on (K-fold
cross-fitting), so the correction learns how wrong the model is on new rows, not how well
it fits its own. The terms are additive in offer and channel like the learner's, so a pair
with no rows gets its offer's and its channel's corrections (pooling across similar
pairs), and a pair-specific ``a[offer, channel]`` on top where its rows show it. Every term
has a Gaussian prior at zero (no correction), sd ``prior_sd`` (half of it for the pair
terms); ``prior_sd`` is chosen by cross-validated log-likelihood on the out-of-fold rows
from a small grid whose smallest value leaves the model nearly as it is. The fit is a
maximum a-posteriori logistic likelihood, by L-BFGS (scipy) with its exact gradient.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

PRIOR_GRID = (0.03, 0.1, 0.3, 1.0)
"""Prior sds tried by cross-validation (0.03: the model nearly as it is)."""


def logit(probability: np.ndarray) -> np.ndarray:
    clipped = np.clip(probability, 1e-9, 1 - 1e-9)
    return np.log(clipped / (1 - clipped))


@dataclass(frozen=True)
class CalibrationRows:
    """Out-of-fold scores of the randomised rows a calibration is fitted on."""

    offer: np.ndarray  # level index per row
    channel: np.ndarray
    base: np.ndarray  # control-arm logit
    effect: np.ndarray  # treated logit − control logit
    treated: np.ndarray  # 0/1
    outcome: np.ndarray  # 0/1

    def subset(self, keep: np.ndarray) -> CalibrationRows:
        return CalibrationRows(
            *(values[keep] for values in (self.offer, self.channel, self.base, self.effect)),
            self.treated[keep],
            self.outcome[keep],
        )


@dataclass(frozen=True)
class PairCalibration:
    """Fitted corrections (see the module docstring), by offer and channel level."""

    offers: tuple[str, ...]
    channels: tuple[str, ...]
    control_offer: np.ndarray  # c[offer]
    effect_offer: np.ndarray  # a[offer]
    effect_channel: np.ndarray  # a[channel]
    effect_pair: np.ndarray  # a[offer, channel]
    slope_offer: np.ndarray  # d[offer]
    prior_sd: float

    def adjust(
        self, offer: Sequence[str], channel: Sequence[str], treated: np.ndarray,
        control: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """Recalibrated (P(respond | treated), P(respond | control)); offers or channels the
        calibration never saw get no correction of their own."""
        o = _indices(offer, self.offers)
        c = _indices(channel, self.channels)
        base, effect = logit(control), logit(treated) - logit(control)
        known_o, known_c = o >= 0, c >= 0
        oo, cc = np.maximum(o, 0), np.maximum(c, 0)
        shift = np.where(known_o, self.control_offer[oo], 0.0)
        lift = np.where(known_o, self.effect_offer[oo] + self.slope_offer[oo] * effect, 0.0)
        lift = lift + np.where(known_c, self.effect_channel[cc], 0.0)
        lift = lift + np.where(known_o & known_c, self.effect_pair[oo, cc], 0.0)
        control_logit = base + shift
        return expit(control_logit + effect + lift), expit(control_logit)

    def summary(self) -> dict[str, object]:
        """Mean effect correction per offer × channel (on the logit), for training metadata."""
        pairs = {
            f"{o}/{c}": round(
                float(self.effect_offer[i] + self.effect_channel[j] + self.effect_pair[i, j]), 4
            )  # fmt: skip
            for i, o in enumerate(self.offers)
            for j, c in enumerate(self.channels)
        }
        slopes = zip(self.offers, self.slope_offer, strict=True)
        return {
            "prior_sd": self.prior_sd,
            "effect_shift": pairs,
            "effect_slope": {offer: round(float(1 + d), 4) for offer, d in slopes},
        }


def _indices(values: Sequence[str], levels: tuple[str, ...]) -> np.ndarray:
    position = {level: k for k, level in enumerate(levels)}
    return np.array([position.get(str(v), -1) for v in values], dtype=np.int64)


def _unpack(theta: np.ndarray, n_offers: int, n_channels: int):
    sizes = [n_offers, n_offers, n_channels, n_offers * n_channels, n_offers]
    parts = np.split(theta, np.cumsum(sizes)[:-1])
    return parts[0], parts[1], parts[2], parts[3].reshape(n_offers, n_channels), parts[4]


def _fit(rows: CalibrationRows, n_offers: int, n_channels: int, prior_sd: float) -> np.ndarray:
    o, c, t, y = rows.offer, rows.channel, rows.treated.astype(float), rows.outcome.astype(float)
    pair = o * n_channels + c
    precision = (
        np.concatenate(
            [
                np.full(2 * n_offers + n_channels, 1.0),
                np.full(n_offers * n_channels, 4.0),
                np.full(n_offers, 1.0),
            ]  # fmt: skip
        )
        / prior_sd**2
    )

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        shift, a_offer, a_channel, a_pair, slope = _unpack(theta, n_offers, n_channels)
        lift = a_offer[o] + a_channel[c] + a_pair.ravel()[pair] + slope[o] * rows.effect
        eta = rows.base + shift[o] + t * (rows.effect + lift)
        loss = float(np.sum(np.logaddexp(0.0, eta) - y * eta))
        residual = expit(eta) - y
        treated_residual = residual * t
        gradient = np.concatenate(
            [
                np.bincount(o, residual, n_offers),
                np.bincount(o, treated_residual, n_offers),
                np.bincount(c, treated_residual, n_channels),
                np.bincount(pair, treated_residual, n_offers * n_channels),
                np.bincount(o, treated_residual * rows.effect, n_offers),
            ]
        )
        return loss + 0.5 * float(precision @ theta**2), gradient + precision * theta

    start = np.zeros(len(precision))
    result = minimize(objective, start, jac=True, method="L-BFGS-B")
    return result.x


def _log_likelihood(theta, rows: CalibrationRows, n_offers: int, n_channels: int) -> float:
    shift, a_offer, a_channel, a_pair, slope = _unpack(theta, n_offers, n_channels)
    lift = a_offer[rows.offer] + a_channel[rows.channel]
    lift = lift + a_pair[rows.offer, rows.channel] + slope[rows.offer] * rows.effect
    eta = rows.base + shift[rows.offer] + rows.treated * (rows.effect + lift)
    return float(np.sum(rows.outcome * eta - np.logaddexp(0.0, eta)))


def fit_pair_calibration(
    rows: CalibrationRows,
    *,
    offers: tuple[str, ...],
    channels: tuple[str, ...],
    folds: np.ndarray,
    grid: Sequence[float] = PRIOR_GRID,
) -> PairCalibration:
    """The calibration of ``rows`` with the prior sd of ``grid`` that predicts the held-out
    folds (``folds``: fold number per row) best."""
    n_offers, n_channels = len(offers), len(channels)
    scores = []
    for prior_sd in grid:
        held_out = 0.0
        for fold in np.unique(folds):
            theta = _fit(rows.subset(folds != fold), n_offers, n_channels, prior_sd)
            held_out += _log_likelihood(theta, rows.subset(folds == fold), n_offers, n_channels)
        scores.append(held_out)
    prior_sd = float(grid[int(np.argmax(scores))])
    parts = _unpack(_fit(rows, n_offers, n_channels, prior_sd), n_offers, n_channels)
    return PairCalibration(offers, channels, *parts, prior_sd=prior_sd)
