"""Off-policy estimates from a simulated log cover the true value of a candidate policy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.loop import off_policy
from cx_pipelines.loop.off_policy import ESTIMATORS, OffPolicyError
from cx_pipelines.loop.policies import CampaignEconomics, true_increment
from cx_pipelines.world.simulator import answer

ECONOMICS = CampaignEconomics(
    campaign_id=("K_card_app", "K_savings_branch", "K_loan_web"),
    offer_type=("credit_card", "savings", "personal_loan"),
    channel=("mobile_app", "branch", "web"),
    margin=np.array([180.0, 120.0, 450.0]),
    cost=np.array([3.0, 4.0, 2.0]),
    budget=np.full(3, np.inf),
    volume_cap=np.full(3, np.inf),
    control_share=np.full(3, 0.1),
)
MARGIN = dict(zip(ECONOMICS.campaign_id, ECONOMICS.margin, strict=True))
COST = dict(zip(ECONOMICS.campaign_id, ECONOMICS.cost, strict=True))
CAMPAIGN_SHARES = np.array([0.5, 0.3, 0.2])
CONTROL_SHARE = 0.25


def simulated_log(truth, *, seed: int) -> pd.DataFrame:
    """A randomised logging policy over every customer, answered by the simulator."""
    rng = np.random.default_rng(seed)
    ids = truth.customer_id
    campaign = rng.choice(3, size=len(ids), p=CAMPAIGN_SHARES)
    treated = rng.random(len(ids)) >= CONTROL_SHARE
    probability = CAMPAIGN_SHARES[campaign] * np.where(treated, 1 - CONTROL_SHARE, CONTROL_SHARE)
    decisions = pd.DataFrame(
        {
            "contact_id": [f"c{customer}" for customer in ids],
            "run_key": f"log-{seed}",
            "campaign_id": np.array(ECONOMICS.campaign_id)[campaign],
            "customer_id": ids,
            "offer_type": np.array(ECONOMICS.offer_type)[campaign],
            "channel": np.array(ECONOMICS.channel)[campaign],
            "group": np.where(treated, "treated", "control"),
            "selection_probability": probability,
            "decided_at": pd.Timestamp("2026-10-05"),
        }
    )
    outcomes = answer(decisions, truth, recent=np.zeros(len(ids)), seed=seed)
    responded = outcomes.set_index("contact_id")["outcome"] == "responded"
    return decisions.assign(responded=decisions["contact_id"].map(responded).astype(int))


def candidate_policy(
    truth, *, noise: float, seed: int, worst: bool = False
) -> tuple[pd.DataFrame, float]:
    """A candidate that targets on noisy model predictions (``worst``: picks each customer's
    least valuable campaign and treats everyone); and its true value."""
    rng = np.random.default_rng(1_000 + seed)
    ids = truth.customer_id
    rows = truth.positions(ids)
    offers, channels = ECONOMICS.offer_codes(), ECONOMICS.channel_codes()
    treated = truth.p_treated[rows][:, offers, channels]
    control = truth.p_control[rows][:, offers]
    predicted_treated = np.clip(treated * rng.lognormal(0, noise, treated.shape), 0, 1)
    predicted_uplift = predicted_treated - control * rng.lognormal(0, noise, control.shape)
    predicted_value = predicted_uplift * ECONOMICS.margin - ECONOMICS.cost
    best = predicted_value.argmin(axis=1) if worst else predicted_value.argmax(axis=1)
    chosen = np.full(len(ids), True) if worst else predicted_value.max(axis=1) > 0
    everyone = np.arange(len(ids))
    frame = pd.DataFrame(
        {
            "customer_id": ids[chosen],
            "campaign_id": np.array(ECONOMICS.campaign_id)[best[chosen]],
            "offer_type": np.array(ECONOMICS.offer_type)[best[chosen]],
            "channel": np.array(ECONOMICS.channel)[best[chosen]],
            "p_response": predicted_treated[everyone, best][chosen],
            "uplift": predicted_uplift[everyone, best][chosen],
        }
    )
    increment = true_increment(truth, ids, ECONOMICS, recent=np.zeros(len(ids)))
    return frame, float(increment[everyone[chosen], best[chosen]].sum())


def test_estimates_cover_the_simulators_true_value(small_world):
    candidate, truth_value = candidate_policy(small_world, noise=0.3, seed=0)
    log = simulated_log(small_world, seed=0)
    estimates = off_policy.evaluate(log, candidate, margin=MARGIN, cost=COST)
    assert set(estimates) == set(ESTIMATORS)
    for estimate in estimates.values():
        assert estimate.low <= truth_value <= estimate.high, estimate
        assert estimate.units == len(log) and estimate.treated_units == len(candidate)
    assert estimates["doubly_robust"].standard_error < estimates["ips"].standard_error


def test_intervals_have_their_nominal_coverage_over_repeated_logs(small_world):
    candidate, truth_value = candidate_policy(small_world, noise=0.3, seed=0)
    covered = {name: 0 for name in ESTIMATORS}
    values = {name: [] for name in ESTIMATORS}
    repeats = 40
    for seed in range(1, repeats + 1):
        log = simulated_log(small_world, seed=seed)
        for name, item in off_policy.evaluate(log, candidate, margin=MARGIN, cost=COST).items():
            covered[name] += item.low <= truth_value <= item.high
            values[name].append(item.value)
    for name in ESTIMATORS:
        assert covered[name] / repeats >= 0.85, (name, covered[name])  # nominal 0.95
        spread = np.std(values[name], ddof=1) / np.sqrt(repeats)
        assert abs(np.mean(values[name]) - truth_value) < 4 * spread, name


def test_bootstrap_interval_agrees_with_the_variance_formula(small_world):
    candidate, _ = candidate_policy(small_world, noise=0.3, seed=0)
    log = simulated_log(small_world, seed=3)
    formula = off_policy.evaluate(log, candidate, margin=MARGIN, cost=COST)
    boot = off_policy.evaluate(log, candidate, margin=MARGIN, cost=COST, bootstrap=400, seed=1)
    for name in ESTIMATORS:
        width, boot_width = formula[name].high - formula[name].low, boot[name].high - boot[name].low
        assert boot[name].value == pytest.approx(formula[name].value)
        assert boot_width == pytest.approx(width, rel=0.2)


def test_a_planted_better_candidate_is_detected(small_world):
    cycles = 5  # the same customers decided five times: 10,000 logged units
    log = pd.concat([simulated_log(small_world, seed=10 + cycle) for cycle in range(cycles)])
    good, good_value = candidate_policy(small_world, noise=0.05, seed=1)
    poor, poor_value = candidate_policy(small_world, noise=0.05, seed=1, worst=True)
    assert good_value > poor_value
    comparison = off_policy.compare(log, good, poor, margin=MARGIN, cost=COST)
    assert comparison.low <= cycles * (good_value - poor_value) <= comparison.high
    assert comparison.difference > 0 and comparison.p_value < 0.05
    reverse = off_policy.compare(log, poor, good, margin=MARGIN, cost=COST)
    assert reverse.difference == pytest.approx(-comparison.difference)
    same = off_policy.compare(log, good, good, margin=MARGIN, cost=COST)
    assert same.difference == 0 and same.p_value == 1.0 and np.isnan(same.units_still_needed)
    # the units the test would still need: none once |z| reaches z_0.975 + z_0.8
    z = comparison.difference / ((comparison.high - comparison.low) / (2 * 1.959964))
    assert comparison.units == len(log)
    assert (comparison.units_still_needed == 0) == (abs(z) >= 1.959964 + 0.841621)
    few = off_policy.compare(log.iloc[: len(log) // 8], good, poor, margin=MARGIN, cost=COST)
    z = few.difference / ((few.high - few.low) / (2 * 1.959964))
    needed = few.units * ((1.959964 + 0.841621) / z) ** 2 - few.units
    assert few.units_still_needed == pytest.approx(max(0.0, np.ceil(needed)), abs=2)


def test_bad_logs_and_candidates_are_clear_errors(small_world):
    log = simulated_log(small_world, seed=5).head(50)
    candidate, _ = candidate_policy(small_world, noise=0.3, seed=0)
    with pytest.raises(OffPolicyError, match="selection_probability outside"):
        off_policy.evaluate(
            log.assign(selection_probability=0.0), candidate, margin=MARGIN, cost=COST
        )
    with pytest.raises(OffPolicyError, match="the decision log lacks column"):
        off_policy.evaluate(log.drop(columns="responded"), candidate, margin=MARGIN, cost=COST)
    with pytest.raises(OffPolicyError, match="duplicate customer_id"):
        off_policy.evaluate(log, pd.concat([candidate, candidate]), margin=MARGIN, cost=COST)
    with pytest.raises(OffPolicyError, match="no margin for campaign"):
        off_policy.evaluate(log, candidate, margin={}, cost=COST)


def test_sub_policies_of_the_log_are_compared_given_the_assignment(small_world):
    log = pd.concat([simulated_log(small_world, seed=30 + cycle) for cycle in range(3)])
    increment = true_increment(
        small_world, log["customer_id"].to_numpy(), ECONOMICS, recent=np.zeros(len(log))
    )
    column = pd.Index(ECONOMICS.campaign_id).get_indexer(log["campaign_id"])
    value = increment[np.arange(len(log)), column]
    everyone = log[["customer_id", "campaign_id", "offer_type", "channel"]].assign(
        p_response=0.05, uplift=0.01
    )
    shares = {campaign: CONTROL_SHARE for campaign in ECONOMICS.campaign_id}
    arm_log = off_policy.given_assignment(log, shares)
    assert set(arm_log["selection_probability"].round(6)) == {CONTROL_SHARE, 1 - CONTROL_SHARE}
    # units are (run, customer): evaluate each run's units with its own candidate rows
    gains, truth = [], 0.0
    for run_key, part in arm_log.groupby("run_key"):
        rows = log["run_key"].to_numpy() == run_key
        deployed = everyone[rows]
        skipping = deployed[value[rows] > 0]
        gains.append(off_policy.compare(part, skipping, deployed, margin=MARGIN, cost=COST))
        truth += -value[rows][value[rows] <= 0].sum()
    difference = sum(gain.difference for gain in gains)
    spread = np.sqrt(sum(((gain.high - gain.low) / 3.92) ** 2 for gain in gains))
    assert abs(difference - truth) < 3 * spread
    with pytest.raises(OffPolicyError, match="no control share for campaign"):
        off_policy.given_assignment(log, {})


@pytest.mark.slow
def test_intervals_cover_when_a_control_cell_has_few_responses():
    """A 30-row control cell at a 3 % rate has no response in 40 % of draws; its outcome
    variance is floored at (x + 1) / (n + 2), so the intervals still cover (0.74 before)."""
    rng = np.random.default_rng(11)
    n_t, n_c, p1, p0, margin = 300, 30, 0.06, 0.03, 1_000.0
    group = np.r_[["treated"] * n_t, ["control"] * n_c]
    shape = {"customer_id": np.arange(n_t + n_c), "campaign_id": "K", "offer_type": "loan",
             "channel": "call_centre"}  # fmt: skip
    log = pd.DataFrame(
        {**shape, "group": group, "selection_probability": np.where(group == "treated", 0.9, 0.1)}
    )
    policy = pd.DataFrame({**shape, "p_response": 0.05, "uplift": 0.02})
    true_value = (n_t + n_c) * margin * (p1 - p0)
    covered = {name: 0 for name in off_policy.ESTIMATORS}
    replays = 40
    for _ in range(replays):
        outcome = rng.random(n_t + n_c) < np.where(group == "treated", p1, p0)
        estimates = off_policy.evaluate(
            log.assign(responded=outcome.astype(int)), policy, margin={"K": margin},
            cost={"K": 0.0},
        )  # fmt: skip
        for name, item in estimates.items():
            covered[name] += item.low <= true_value <= item.high
    assert all(count >= 0.9 * replays for count in covered.values()), covered
    difference = off_policy.compare(
        log.assign(responded=0), policy.iloc[:0], policy, margin={"K": margin}, cost={"K": 0.0}
    )
    assert difference.high - difference.low > 0, "no response at all still leaves an interval"


def test_variance_floor_works_over_a_population_with_unlogged_customers():
    """Units without a logged row (no campaign, no arm) have no cell and no floor."""
    log = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4], "campaign_id": "K", "offer_type": "loan", "channel": "web",
         "group": ["treated", "treated", "control", "treated"],
         "selection_probability": [0.9, 0.9, 0.1, 0.9], "responded": [1, 0, 0, 0]}
    )  # fmt: skip
    policy = pd.DataFrame(
        {"customer_id": [1, 2, 3, 9], "campaign_id": "K", "offer_type": "loan", "channel": "web",
         "p_response": 0.1, "uplift": 0.05}
    )  # fmt: skip
    estimates = off_policy.evaluate(
        log, policy, margin={"K": 100.0}, cost={"K": 1.0}, population=np.arange(1, 12)
    )
    terms = off_policy.unit_terms(
        log, policy, margin={"K": 100.0}, cost={"K": 1.0}, population=np.arange(1, 12)
    )
    assert set(terms.cell) == {"K|treated", "K|control", ""}
    # the control cell (0 of 1) is floored at 1/3: its variance alone is (100/0.1)² · 2/9
    floor = (100 / 0.1) ** 2 * (1 / 3) * (2 / 3) / 11**2
    assert estimates["ips"].standard_error ** 2 >= floor * 11**2 * 0.999
