"""Targeting lists: caps, one offer per customer, contact policy, controls, exploration."""

from __future__ import annotations

import json
from datetime import timedelta

import campaign_support as synthetic
import numpy as np
import pandas as pd
import pytest

from cx_pipelines.campaigns.draws import uniform
from cx_pipelines.campaigns.targeting import control_salt


@pytest.fixture(scope="module")
def inputs():
    frame = synthetic.population(600)
    return frame, synthetic.scores(frame), synthetic.history(frame, {("credit_card", "email"): 80})


def test_caps_budgets_and_one_offer_per_customer_hold(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    result = synthetic.run(frame, score_frame, contacts, campaigns)
    targets = result.targets
    assert not targets["customer_id"].duplicated().any()
    assert "old" not in set(targets["campaign_id"])  # inactive on the decision date
    assert result.summary["inactive_campaigns"] == ["old"]
    for campaign in campaigns[:4]:
        rows = targets[targets["campaign_id"] == campaign.campaign_id]
        treated = int((rows["group"] == "treated").sum())
        assert treated <= campaign.volume_cap
        assert treated * campaign.cost_per_contact <= campaign.budget + 1e-9
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        assert (rows["customer_id"].isin(frame.loc[frame["age"] >= 18, "customer_id"])).all()
    # caps this tight bind: each capped campaign is (nearly) full
    card = targets[(targets["campaign_id"] == "card_app") & (targets["group"] == "treated")]
    # budget 10 / cost 0.5 = 20; the control draw can leave a row short of the cap
    assert 18 <= len(card) <= 20
    assert 0 <= result.summary["gap"] < 1e-4
    assert result.summary["treated"] == int((targets["group"] == "treated").sum())


def test_optimiser_rows_are_ranked_by_value_and_worth_it(inputs) -> None:
    frame, score_frame, contacts = inputs
    targets = synthetic.run(frame, score_frame, contacts, synthetic.competing_campaigns()).targets
    chosen = targets[~targets["exploration"]]
    assert (chosen["expected_incremental_profit"] > 0).all()
    for _, rows in targets.groupby("campaign_id"):
        values = rows["expected_incremental_profit"].to_numpy()
        assert (np.diff(values) <= 1e-12).all()


def test_controls_are_deterministic_and_independent_of_scores(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    first = synthetic.run(frame, score_frame, contacts, campaigns).targets
    shuffled = synthetic.scores(frame, seed=9)  # other scores: other customers chosen
    second = synthetic.run(frame, shuffled, contacts, campaigns).targets
    for targets in (first, second):
        for campaign in campaigns[:4]:
            rows = targets[targets["campaign_id"] == campaign.campaign_id]
            draw = uniform(rows["customer_id"].to_numpy(), control_salt(campaign, synthetic.DAY))
            expected = np.where(draw < campaign.control_share, "control", "treated")
            assert rows["group"].tolist() == expected.tolist()
    both = first.merge(second, on=["campaign_id", "customer_id"])
    assert (both["group_x"] == both["group_y"]).all()
    savings = first[first["campaign_id"] == "savings_web"]
    assert 0.25 < (savings["group"] == "control").mean() < 0.75  # control share 0.5


def test_controls_are_drawn_afresh_each_decision_date(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    first = synthetic.run(frame, score_frame, contacts, campaigns).targets
    later = synthetic.DAY + timedelta(days=7)
    again = synthetic.run(frame, score_frame, contacts, campaigns, decision_date=later).targets
    both = first.merge(again, on=["campaign_id", "customer_id"])
    assert len(both) > 100
    changed = both["group_x"] != both["group_y"]
    # about 2 × share × (1 − share) of the rows change arm; a draw fixed per campaign moves none
    assert 0.05 < changed.mean() < 0.6
    assert both.loc[both["group_x"] == "control", "group_y"].eq("treated").any()


def test_reruns_with_the_same_inputs_are_identical_and_run_key_follows_inputs(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = synthetic.competing_campaigns()
    one = synthetic.run(frame, score_frame, contacts, campaigns)
    two = synthetic.run(frame, score_frame, contacts, campaigns)
    pd.testing.assert_frame_equal(one.targets, two.targets)
    assert one.run_key == two.run_key and one.run_key.startswith("2026-10-01-")
    other = synthetic.run(frame, score_frame, contacts, campaigns, exploration_share=0.2)
    assert other.run_key != one.run_key
    assert one.targets["contact_id"].is_unique and (one.targets["contact_id"] > 0).all()


def test_exploration_is_bounded_recorded_and_fades_with_positives(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = [
        synthetic.campaign("card_email", "credit_card", "email", volume_cap=200.0),
        synthetic.campaign("loan_web", "personal_loan", "web", volume_cap=200.0),
    ]
    result = synthetic.run(frame, score_frame, contacts, campaigns, mature_positives=50)
    per = result.summary["per_campaign"]
    assert per["card_email"]["pair_positives"] == 80  # mature: no exploration
    assert per["card_email"]["exploration_share"] == 0 and per["card_email"]["explored"] == 0
    assert per["loan_web"]["pair_positives"] == 0 and per["loan_web"]["exploration_share"] == 0.1
    explored = result.targets[result.targets["exploration"]]
    assert 1 <= len(explored) <= 0.1 * 200 * 2.5  # bounded: ~10 % of its capacity expected
    assert set(explored["campaign_id"]) == {"loan_web"}
    traces = [json.loads(t) for t in explored["trace"]]
    assert {t["method"] for t in traces} == {"exploration"}
    assert all(0 < t["exploration_probability"] <= 0.1 for t in traces)
    probability = result.targets["selection_probability"]
    assert ((probability > 0) & (probability <= 1)).all()
    # an explored row's probability is its draw (plus the optimiser's, if it chose it too)
    row = explored.iloc[0]
    trace = json.loads(row["trace"])
    arm = 0.8 if row["group"] == "treated" else 0.2
    assert row["selection_probability"] >= trace["exploration_probability"] * arm - 1e-12
    assert result.summary["explored"] == len(explored)


def test_no_exploration_when_its_share_is_zero(inputs) -> None:
    frame, score_frame, contacts = inputs
    result = synthetic.run(
        frame, score_frame, contacts, synthetic.competing_campaigns(), exploration_share=0.0
    )
    assert not result.targets["exploration"].any()
    chosen = result.targets
    arm = np.where(chosen["group"] == "treated", 0.8, 0.2)
    arm[chosen["campaign_id"] == "savings_web"] = 0.5
    np.testing.assert_allclose(chosen["selection_probability"], arm)


def test_contact_policy_caps_and_suppression_block_customers(inputs) -> None:
    frame, score_frame, _ = inputs
    ids = frame["customer_id"].to_numpy()
    day = pd.Timestamp(synthetic.DAY)
    rows = []
    for customer in ids[:100]:  # two emails this week
        rows += [
            (customer, "savings", "email", day - pd.Timedelta(days=d), True, False) for d in (1, 3)
        ]
    for customer in ids[100:200]:  # three unanswered credit-card offers in 90 days
        rows += [(customer, "credit_card", "web", day - pd.Timedelta(days=d), True, False)
                 for d in (10, 40, 80)]  # fmt: skip
    for customer in ids[200:300]:  # old contacts and a future one: do not count
        rows += [(customer, "credit_card", "email", day - pd.Timedelta(days=d), True, False)
                 for d in (200, 300, -5)]  # fmt: skip
    contacts = pd.DataFrame(
        rows,
        columns=["customer_id", "offer_type", "channel", "contacted_at", "treated", "responded"],
    )
    campaigns = [
        synthetic.campaign("card_email", "credit_card", "email", volume_cap=1000.0),
        synthetic.campaign("loan_email", "personal_loan", "email", volume_cap=1000.0),
    ]
    result = synthetic.run(
        frame, synthetic.scores(frame), contacts, campaigns,
        caps=[("email", 2, 7), ("*", 8, 30)], decline_limit=(3, 90), exploration_share=0.0,
    )  # fmt: skip
    decided = set(result.targets["customer_id"])
    assert decided.isdisjoint(ids[:100])  # email cap reached
    card = set(result.targets.loc[result.targets["campaign_id"] == "card_email", "customer_id"])
    assert card.isdisjoint(ids[100:200])  # suppressed for credit cards only
    assert not set(ids[200:300]).isdisjoint(card)
    blocked = result.summary["per_campaign"]["card_email"]["blocked_by_policy"]
    assert blocked["contact cap email: 2 per 7 days"] == 100
    assert blocked["suppressed: 3 declines of credit_card in 90 days"] == 100


def test_unscored_pairs_only_explore(inputs) -> None:
    frame, _, contacts = inputs
    unscored = pd.DataFrame({"customer_id": frame["customer_id"]})
    campaigns = [synthetic.campaign("loan_web", "personal_loan", "web", volume_cap=200.0)]
    targets = synthetic.run(frame, unscored, contacts, campaigns).targets
    assert len(targets) and targets["exploration"].all()
    assert targets["expected_incremental_profit"].isna().all()


def test_no_active_campaign_decides_no_one(inputs) -> None:
    frame, score_frame, contacts = inputs
    campaigns = [
        synthetic.campaign("old", "mortgage", "branch", end=synthetic.DAY.replace(month=9))
    ]
    result = synthetic.run(frame, score_frame, contacts, campaigns)
    assert result.targets.empty and list(result.targets.columns)[-1] == "trace"
    assert result.summary["active_campaigns"] == [] and result.summary["gap"] == 0.0


def _fit_one_row_at_a_time(choice, explored, control, value, capacity):
    """The capacity repair read literally: drop rows one by one until the treated fit."""
    choice = choice.copy()
    for j in range(control.shape[1]):
        members = np.flatnonzero(choice == j)
        excess = int((~control[members, j]).sum()) - int(capacity[j])
        order = np.lexsort((value[members, j], explored[members]))
        dropped = 0
        for position in order:
            if dropped >= excess:
                break
            choice[members[position]] = -1
            dropped += int(not control[members[position], j])
    return choice


def test_the_vectorised_capacity_repair_equals_dropping_rows_one_at_a_time() -> None:
    from cx_pipelines.campaigns.targeting import fit_treated

    repaired = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        customers, campaigns = int(rng.integers(1, 80)), int(rng.integers(1, 4))
        choice = rng.integers(-1, campaigns, customers)
        explored = rng.random(customers) < 0.3
        control = rng.random((customers, campaigns)) < 0.3
        value = np.round(rng.normal(size=(customers, campaigns)), 1)  # ties included
        value[rng.random((customers, campaigns)) < 0.1] = np.nan
        capacity = rng.integers(0, customers // campaigns + 2, campaigns).astype(float)
        fast = fit_treated(choice, explored, control, value, capacity)
        assert np.array_equal(
            fast, _fit_one_row_at_a_time(choice, explored, control, value, capacity)
        )
        repaired += int((fast != choice).sum())
    assert repaired > 100


def test_exploration_draws_only_customers_whose_optimistic_value_is_positive(inputs) -> None:
    frame, score_frame, contacts = inputs
    # cost 10 against margin 100: only customers with p_response > 0.1 could ever pay back
    campaigns = [
        synthetic.campaign(
            "loan_web", "personal_loan", "web", volume_cap=200.0, cost_per_contact=10.0
        )
    ]
    propensity = score_frame.set_index("customer_id")["propensity__personal_loan__web"]
    worthwhile = propensity * 100.0 - 10.0 > 0
    assert 0.2 < worthwhile.mean() < 0.8
    result = synthetic.run(frame, score_frame, contacts, campaigns, exploration_share=0.3)
    explored = result.targets[result.targets["exploration"]]
    assert len(explored) and worthwhile.reindex(explored["customer_id"]).all()
    # q = share x min(capacity, candidates) / candidates, logged with every explored row
    candidates = int(worthwhile.sum())
    expected_q = 0.3 * min(200 / 0.8, candidates) / candidates
    traces = [json.loads(t) for t in explored["trace"]]
    np.testing.assert_allclose(
        [t["exploration_probability"] for t in traces], expected_q, atol=1e-6
    )
    arm = np.where(explored["group"] == "treated", 0.8, 0.2)
    assert (explored["selection_probability"] >= expected_q * arm - 1e-9).all()
    everyone = synthetic.run(
        frame, score_frame, contacts, campaigns, exploration_share=0.3,
        explore_worthwhile_only=False,
    )  # fmt: skip
    drawn = everyone.targets[everyone.targets["exploration"]]
    assert not worthwhile.reindex(drawn["customer_id"]).all()
