"""Off-policy estimates on a decision log *with loop history*: four weekly decisions of the
campaigns package's targeting (caps, decline suppression, exploration, controls), each
answered by the simulator with its contact fatigue; the last log replayed many times
against the truth of a candidate (the same campaigns with half their caps) on that history.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import replay_support as rs

from cx_pipelines.loop import direct_model, off_policy
from cx_pipelines.loop.candidate import persistent_draws

CYCLES = 4
REPEATS = 40


@pytest.fixture(scope="module")
def persistent(small_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("persistent")
    return rs.loop_history(small_world, folder, cycles=CYCLES, fresh_controls=False)


@pytest.fixture(scope="module")
def fresh(small_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fresh")
    return rs.loop_history(small_world, folder, cycles=CYCLES, fresh_controls=True)


def control_share(log: pd.DataFrame) -> float:
    return float((log["group"] == "control").mean())


def test_persistent_hold_outs_pile_up_in_a_later_log_and_are_detected(persistent, fresh):
    # a fixed-salt 10 % hold-out stays eligible while its treated peers are capped or
    # suppressed, so a later log holds far more controls than the draw's 10 %
    rows = len(persistent.last)
    assert control_share(persistent.last) > 0.1 + 4 * np.sqrt(0.09 / rows)
    assert set(persistent_draws(persistent.last, persistent.campaigns).values()) == {True}
    # drawn afresh every run, the hold-out is 10 % of every log
    assert abs(control_share(fresh.last) - 0.1) < 3 * np.sqrt(0.09 / len(fresh.last))
    assert set(persistent_draws(fresh.last, fresh.campaigns).values()) == {False}
    assert rs.arm_design(fresh, fresh.last)["revealed"] == set()


def test_weighting_fixed_arms_as_drawn_is_biased_and_they_are_left_to_the_models(
    small_world, persistent
):
    truth = persistent.truth
    assert truth > 0
    naive, told = [], []
    for repeat in range(REPEATS):
        log = rs.replay(persistent, small_world, repeat=repeat)
        naive.append(rs.estimates(persistent, log, small_world, design=False)["ips"].value)
        told.append(rs.estimates(persistent, log, small_world))
    naive = np.array(naive)
    # IPS that believes each logged arm was drawn at 10 % counts the held-out customers
    # several times over: far below the truth, by many standard errors
    assert naive.mean() < truth - 3.5 * naive.std(ddof=1) / np.sqrt(REPEATS)
    ips, dr = told[0]["ips"], told[0]["doubly_robust"]
    assert ips.arm_fixed_units > 0 and ips.arm_fixed_units == dr.arm_fixed_units
    assert ips.scope == "supported actions only" and dr.scope == "all actions"
    assert ips.supported_units + ips.unsupported_units == ips.treated_units
    assert ips.unsupported_units >= ips.arm_fixed_units
    # a fixed arm's unit has no IPS term; DR keeps its observed arm at the campaign's weight
    log = rs.replay(persistent, small_world, repeat=0)
    terms = off_policy.unit_terms(
        log, persistent.actions, population=small_world.customer_id, **persistent.economics,
        **rs.arm_design(persistent, log),
    )  # fmt: skip
    fixed = terms.arm_fixed
    assert (terms.treated_weight[fixed] == 0).all() and (terms.control_weight[fixed] == 0).all()
    assert (np.abs(terms.treated_residual[fixed & terms.matched]) > 0).any()


@pytest.mark.slow
def test_estimators_are_unbiased_and_cover_on_a_log_with_loop_history(small_world, fresh):
    truth = fresh.truth
    results = {name: [] for name in off_policy.ESTIMATORS}
    for repeat in range(REPEATS):
        log = rs.replay(fresh, small_world, repeat=repeat)
        assert abs(control_share(log) - 0.1) < 4 * np.sqrt(0.09 / len(log))
        recent = rs.recent(fresh.history, fresh.actions["customer_id"].to_numpy(), fresh.day)
        actions = direct_model.recalibrated(log, fresh.actions, recent=recent)
        estimates = off_policy.evaluate(
            log, actions, population=small_world.customer_id, **fresh.economics,
            **rs.arm_design(fresh, log),
        )  # fmt: skip
        for name, item in estimates.items():
            assert item.arm_fixed_units == 0
            results[name].append((item.value, item.low <= truth <= item.high))
    for name, rows in results.items():
        values = np.array([value for value, _ in rows])
        covered = np.mean([inside for _, inside in rows])
        spread = values.std(ddof=1) / np.sqrt(REPEATS)
        assert abs(values.mean() - truth) < 3.5 * spread, (name, values.mean(), truth, spread)
        assert covered >= 0.8, (name, covered)  # nominal 0.95


def planted_log(rows: int, *, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """A log and candidate on one pair whose treated response falls with recent contacts
    by the simulator's 0.35 log-odds per contact, which the models do not know."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1, rows + 1)
    mu1 = rng.uniform(0.05, 0.3, rows)
    recent = rng.integers(0, 4, rows)
    treated = rng.random(rows) >= 0.3
    p = np.where(treated, 1 / (1 + np.exp(-(np.log(mu1 / (1 - mu1)) - 0.35 * recent))), mu1 / 2)
    log = pd.DataFrame(
        {
            "customer_id": ids, "campaign_id": "k", "offer_type": "savings", "channel": "web",
            "group": np.where(treated, "treated", "control"),
            "selection_probability": np.where(treated, 0.7, 0.3),
            "responded": (rng.random(rows) < p).astype(int),
        }
    )  # fmt: skip
    candidate = log[["customer_id", "campaign_id", "offer_type", "channel"]].assign(
        p_response=mu1, uplift=mu1 / 2
    )
    return log, candidate, recent


def test_the_recalibrated_direct_model_learns_fatigue_and_is_cross_fitted():
    log, candidate, recent = planted_log(8_000, seed=5)
    fitted = direct_model.recalibrated(log, candidate, recent=recent)
    tired = recent == 3
    # the models' scores ignore three recent contacts; the recalibration takes most of
    # the fatigue off (σ(logit μ − 1.05) is about 0.38 μ at these rates)
    ratio = fitted["p_response"].to_numpy()[tired] / candidate["p_response"].to_numpy()[tired]
    assert 0.3 < np.median(ratio) < 0.5
    control = fitted["p_response"] - fitted["uplift"]
    assert np.median(control / (candidate["p_response"] / 2)) == pytest.approx(1.0, abs=0.15)
    # a unit's own outcome never enters its prediction: flip one even-id outcome
    flipped = log.copy()
    flipped.loc[flipped["customer_id"] % 2 == 0, "responded"] = 1
    again = direct_model.recalibrated(flipped, candidate, recent=recent)
    even = (candidate["customer_id"] % 2 == 0).to_numpy()
    assert np.allclose(again["p_response"][even], fitted["p_response"][even])
    assert not np.allclose(again["p_response"][~even], fitted["p_response"][~even])


def test_too_few_matched_rows_keep_the_models_scores():
    log, candidate, recent = planted_log(60, seed=6)
    fitted = direct_model.recalibrated(log, candidate, recent=recent)
    assert np.allclose(fitted["p_response"], candidate["p_response"])
    assert np.allclose(fitted["uplift"], candidate["uplift"])
