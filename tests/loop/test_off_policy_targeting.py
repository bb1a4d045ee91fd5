"""The estimators against the simulator's truth on the real targeting: the campaigns
package's own decisions and selection probabilities (``target``, as ``campaign_targets``
runs it), answered by the simulator many times, and a candidate whose true value the
world's truth knows exactly."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import replay_support

from cx_pipelines.campaigns.targeting import TargetingSettings, target
from cx_pipelines.loop import off_policy
from cx_pipelines.loop.policies import action_values
from cx_pipelines.loop.targeting_inputs import economics_of
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world.simulator import answer

CAMPAIGNS = (  # campaign, offer, channel, margin, cost, volume cap, control share
    ("card_app", "credit_card", "mobile_app", 180.0, 3.0, 360, 0.2),
    ("savings_branch", "savings", "branch", 120.0, 4.0, 240, 0.2),
    ("loan_web", "personal_loan", "web", 450.0, 2.0, 300, 0.25),
)
DAY = date(2026, 10, 5)
REPEATS = 40


def write_campaigns(folder: Path, *, cap_factor: float = 1.0) -> list:
    return replay_support.write_campaigns(folder, cap_factor=cap_factor, table=CAMPAIGNS)


def model_scores(truth, *, seed: int = 7, noise: float = 0.3) -> pd.DataFrame:
    """Noisy models of the truth (fatigue-blind, like the champion models)."""
    rng = np.random.default_rng(seed)
    frame = {"customer_id": truth.customer_id}
    for offer in OFFER_TYPES:
        for channel in OFFER_CHANNELS:
            o, c = OFFER_TYPES.index(offer), OFFER_CHANNELS.index(channel)
            treated = truth.p_treated[:, o, c] * rng.lognormal(0, noise, len(truth.customer_id))
            control = truth.p_control[:, o] * rng.lognormal(0, noise, len(truth.customer_id))
            frame[f"propensity__{offer}__{channel}"] = np.clip(treated, 0, 1)
            frame[f"uplift__{offer}__{channel}"] = np.clip(treated, 0, 1) - control
    return pd.DataFrame(frame)


def no_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="int64"),
            "campaign_id": pd.Series([], dtype=object),
            "offer_type": pd.Series([], dtype=object),
            "channel": pd.Series([], dtype=object),
            "treated": pd.Series([], dtype=bool),
            "responded": pd.Series([], dtype=bool),
            "contacted_at": pd.Series([], dtype="datetime64[ns]"),
        }
    )


def decide(campaigns, truth, scores, *, day: date, exploration: float) -> pd.DataFrame:
    result = target(
        campaigns,
        pd.DataFrame({"customer_id": truth.customer_id}),
        scores,
        no_history(),
        caps=[],
        decline_limit=None,
        settings=TargetingSettings(decision_date=day, exploration_share=exploration),
        strategy_hash="test",
        model_versions={},
        fingerprint={"day": str(day)},
    )
    return result.targets


def logged(campaigns, truth, scores, *, repeat: int, exploration: float) -> pd.DataFrame:
    """One logging run: fresh control salts and exploration draws, the simulator's answers."""
    salted = [dataclasses.replace(c, salt=f"{c.salt}-log-{repeat}") for c in campaigns]
    day = DAY + timedelta(days=repeat)  # the exploration draws are salted with the date
    decisions = decide(salted, truth, scores, day=day, exploration=exploration)
    outcomes = answer(decisions, truth, recent=np.zeros(len(decisions)), seed=repeat)
    responded = outcomes.set_index("contact_id")["outcome"] == "responded"
    return decisions.assign(responded=decisions["contact_id"].map(responded).astype(int))


@pytest.fixture(scope="module")
def setting(small_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("campaigns")
    deployed = write_campaigns(folder / "deployed")
    wider = write_campaigns(folder / "wider", cap_factor=1.6)
    scores = model_scores(small_world)
    candidate = decide(wider, small_world, scores, day=DAY, exploration=0.0)
    actions = candidate[list(off_policy.CANDIDATE_COLUMNS)]
    values = action_values(small_world, actions, economics_of(wider), recent=np.zeros(len(actions)))
    economics = {
        "margin": {c.campaign_id: c.margin_per_response for c in wider},
        "cost": {c.campaign_id: c.cost_per_contact for c in wider},
    }
    return deployed, scores, actions, values, economics


def test_ips_and_dr_are_unbiased_and_cover_on_an_exploring_log(small_world, setting):
    deployed, scores, actions, values, economics = setting
    truth = float(values.sum())
    assert truth > 0
    results = {name: [] for name in off_policy.ESTIMATORS}
    for repeat in range(REPEATS):
        log = logged(deployed, small_world, scores, repeat=repeat, exploration=0.3)
        assert log["exploration"].any() and (log["selection_probability"] < 0.5).any()
        estimates = off_policy.evaluate(
            log, actions, population=small_world.customer_id, **economics
        )
        for name, item in estimates.items():
            # every pair is explored, so every action is supported and IPS speaks for all
            assert item.unsupported_units == 0 and item.scope == "all actions", item
            assert item.units == len(small_world.customer_id)
            results[name].append((item.value, item.low <= truth <= item.high))
    for name, rows in results.items():
        estimates_, covered = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        spread = estimates_.std(ddof=1) / np.sqrt(REPEATS)
        assert abs(estimates_.mean() - truth) < 3.5 * spread, (name, estimates_.mean(), truth)
        assert covered.mean() >= 0.85, (name, covered.mean())  # nominal 0.95
    dr, ips = (np.array([r[0] for r in results[n]]) for n in ("doubly_robust", "ips"))
    assert dr.std() < ips.std()


def test_actions_a_deterministic_log_never_takes_are_reported_not_estimated(small_world, setting):
    deployed, scores, actions, values, economics = setting
    errors, unsupported_share = [], []
    for repeat in range(REPEATS):
        log = logged(deployed, small_world, scores, repeat=200 + repeat, exploration=0.0)
        assert not log["exploration"].any()
        population = small_world.customer_id
        terms = off_policy.unit_terms(log, actions, population=population, **economics)
        supported = pd.Series(terms.supported, index=population).reindex(actions["customer_id"])
        supported_truth = float(values[supported.to_numpy()].sum())
        estimates = off_policy.evaluate(log, actions, population=population, **economics)
        ips, dr = estimates["ips"], estimates["doubly_robust"]
        # the wider candidate treats customers the log's optimiser never gives that campaign
        assert ips.unsupported_units > 0 and ips.scope == "supported actions only"
        assert dr.scope == "all actions"
        assert ips.supported_units + ips.unsupported_units == ips.treated_units == len(actions)
        assert ips.unsupported_direct_value == pytest.approx(
            terms.direct[terms.chosen & ~terms.supported].sum()
        )
        # DR is the direct method alone on the unsupported actions
        residual = terms.treated_residual - terms.control_residual
        assert residual[~terms.supported].sum() == 0
        errors.append(ips.value - supported_truth)
        unsupported_share.append(ips.unsupported_share)
    spread = np.std(errors, ddof=1) / np.sqrt(REPEATS)
    assert abs(np.mean(errors)) < 3.5 * spread  # IPS is unbiased for what it speaks for
    assert 0 < np.mean(unsupported_share) < 1


def test_population_units_refuse_a_log_or_candidate_outside_them(small_world, setting):
    deployed, scores, actions, _, economics = setting
    log = logged(deployed, small_world, scores, repeat=0, exploration=0.3)
    some = small_world.customer_id[:100]
    with pytest.raises(off_policy.OffPolicyError, match="not in the population"):
        off_policy.evaluate(log, actions, population=some, **economics)
    inside = log[log["customer_id"].isin(some)]
    with pytest.raises(off_policy.OffPolicyError, match="outside the population"):
        off_policy.evaluate(inside, actions, population=some, **economics)
    with pytest.raises(off_policy.OffPolicyError, match="several rows for one customer"):
        off_policy.evaluate(
            pd.concat([log, log]), actions, population=small_world.customer_id, **economics
        )
