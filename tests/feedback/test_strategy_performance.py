"""The performance cube finds planted effects; the challenger test detects a better challenger."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.feedback.experiments import champion_challenger_tests
from cx_pipelines.feedback.performance import (
    ALL,
    newcombe_difference,
    performance_cube,
    with_dimensions,
)


def planted(
    *,
    rng: np.random.Generator,
    rows: int,
    control_rate: float,
    lift: float,
    segment: str = "mass",
    test_group: str = "champion",
    control_share: float = 0.2,
    revenue: float = 50.0,
) -> pd.DataFrame:
    """Outcomes where treated customers respond ``lift`` more often than control ones."""
    batch = f"{segment}-{test_group}-{rng.integers(10**12)}"
    treated = rng.random(rows) >= control_share
    responded = rng.random(rows) < np.where(treated, control_rate + lift, control_rate)
    return pd.DataFrame(
        {
            "contact_id": [f"{batch}-{i}" for i in range(rows)],
            "campaign_id": "spring_savings",
            "customer_id": rng.integers(1, 10**9, rows),
            "offer_type": "savings",
            "channel": "email",
            "treated": treated,
            "responded": responded,
            "revenue": np.where(responded, revenue, 0.0),
            "strategy_hash": "h1",
            "segment": segment,
            "test_group": test_group,
        }
    )


def cell(cube: pd.DataFrame, **where: str) -> pd.Series:
    kept = "+".join(name for name in cube.columns[1:6] if name in where)
    rows = cube[cube["grain"] == (kept or ALL)]
    for name, value in where.items():
        rows = rows[rows[name] == value]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_the_cube_finds_a_planted_lift_with_the_right_sign_and_a_covering_interval() -> None:
    rng = np.random.default_rng(7)
    frame = pd.concat(
        [
            planted(rng=rng, rows=20_000, control_rate=0.10, lift=0.05, segment="affluent"),
            planted(rng=rng, rows=20_000, control_rate=0.10, lift=0.0, segment="student"),
        ],
        ignore_index=True,
    )
    cube = performance_cube(
        with_dimensions(frame), contact_cost={"spring_savings": 1.0}, confidence=0.95
    )

    lifted = cell(cube, segment="affluent")
    assert lifted["incremental_response_rate"] > 0
    assert (
        lifted["incremental_response_rate_low"] <= 0.05 <= lifted["incremental_response_rate_high"]
    )
    assert lifted["incremental_response_rate_low"] > 0  # the effect is detected, not just covered
    # profit per treated contact: 0.05 × 50 revenue − 1 cost = 1.5
    treated = lifted["treated_contacts"]
    assert lifted["incremental_profit_low"] <= 1.5 * treated <= lifted["incremental_profit_high"]
    assert lifted["incremental_profit"] > 0

    flat = cell(cube, segment="student")
    assert flat["incremental_response_rate_low"] <= 0 <= flat["incremental_response_rate_high"]
    total = cell(cube)
    assert total["contacts"] == 40_000 == lifted["contacts"] + flat["contacts"]
    assert total["responses"] == int(frame["responded"].sum())
    finest = cube[cube["grain"] == "segment+test_group+campaign_id+channel+strategy_hash"]
    assert finest["contacts"].sum() == 40_000
    assert set(cube["grain"]) >= {"test_group", "campaign_id+channel", ALL}
    assert cube["grain"].nunique() == 2**5


def test_a_cell_without_a_control_arm_has_no_incremental_figures() -> None:
    rng = np.random.default_rng(1)
    frame = planted(rng=rng, rows=200, control_rate=0.1, lift=0.05, control_share=0.0)
    row = cell(performance_cube(with_dimensions(frame)))
    assert row["control_contacts"] == 0
    assert np.isnan(row["incremental_response_rate"]) and np.isnan(row["incremental_profit"])
    assert row["treated_rate"] == pytest.approx(frame["responded"].mean())


def test_newcombe_intervals_cover_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(3)
    trials_1, trials_2, rate_1, rate_2 = 300, 120, 0.12, 0.07
    successes_1 = rng.binomial(trials_1, rate_1, 4000)
    successes_2 = rng.binomial(trials_2, rate_2, 4000)
    _, low, high = newcombe_difference(successes_1, trials_1, successes_2, trials_2)
    coverage = np.mean((low <= rate_1 - rate_2) & (rate_1 - rate_2 <= high))
    assert 0.93 <= coverage <= 0.97


def test_segment_and_test_group_come_from_the_log_then_customer_decisions() -> None:
    results = pd.DataFrame(
        {
            "contact_id": ["a", "b", "c"],
            "customer_id": [1, 2, 3],
            "strategy_hash": ["h", "h", "h"],
            "campaign_id": "x",
            "channel": "email",
        }
    )
    log = pd.DataFrame(
        {
            "contact_id": ["a"],
            "segment": ["vip"],
            "test_group": ["challenger_1"],
            "p_response": [0.3],
            "uplift": [0.1],
        }
    )
    customers = pd.DataFrame(
        {"customer_id": [1, 2], "segment": ["mass", "mass"], "test_group": ["champion"] * 2}
    )
    frame = with_dimensions(results, log, customers)
    assert frame["segment"].tolist() == ["vip", "mass", "(unknown)"]
    assert frame["test_group"].tolist() == ["challenger_1", "champion", "(unknown)"]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_a_planted_better_challenger_is_detected(seed: int) -> None:
    rng = np.random.default_rng(seed)
    frame = pd.concat(
        [
            planted(rng=rng, rows=16_000, control_rate=0.08, lift=0.03, test_group="champion"),
            planted(rng=rng, rows=4_000, control_rate=0.08, lift=0.07, test_group="better"),
        ],
        ignore_index=True,
    )
    tests = champion_challenger_tests(frame).set_index(["challenger", "metric"])

    better = tests.loc[("better", "treated_response_rate")]
    assert better["effect"] > 0 and better["p_value"] < 0.05 and better["significant"]
    assert better["fisher_p_value"] < 0.05
    assert better["challenger_contacts_still_needed"] == 0
    assert tests.loc[("better", "incremental_response_rate"), "p_value"] < 0.05


def test_a_null_challenger_is_flagged_only_at_the_test_level() -> None:
    """Same truth in both groups: over seeded replicates, about 5 % of tests reject."""
    rejected = {metric: [] for metric in ("treated_response_rate", "incremental_response_rate")}
    needed = []
    for seed in range(300):
        rng = np.random.default_rng(1000 + seed)
        treated = rng.random(3_000) >= 0.2
        frame = pd.DataFrame(
            {
                "treated": treated,
                "responded": rng.random(3_000) < np.where(treated, 0.13, 0.10),
                "test_group": np.where(np.arange(3_000) < 2_000, "champion", "same"),
            }
        )
        tests = champion_challenger_tests(frame).set_index("metric")
        for metric in rejected:
            rejected[metric].append(bool(tests.loc[metric, "significant"]))
        needed.append(tests.loc["treated_response_rate", "challenger_contacts_still_needed"])
    for metric, flags in rejected.items():
        assert 0.02 <= np.mean(flags) <= 0.09, metric
    assert np.nanmedian(needed) > 1_000  # a null effect needs far more contacts than it has


def exact(group: str, *, treated: int, responses: int) -> pd.DataFrame:
    """Treated outcomes of one test group with exactly ``responses`` responders."""
    return pd.DataFrame(
        {
            "treated": True,
            "responded": np.arange(treated) < responses,
            "test_group": group,
        }
    )


def test_the_sample_size_still_needed_brings_the_observed_effect_to_the_power() -> None:
    frame = pd.concat(
        [
            exact("champion", treated=1_000, responses=100),
            exact("challenger", treated=1_000, responses=125),
        ],
        ignore_index=True,
    )
    row = champion_challenger_tests(frame).set_index("metric").loc["treated_response_rate"]
    assert row["p_value"] > 0.05 and row["effect"] == pytest.approx(0.025)
    needed = row["challenger_contacts_still_needed"]
    assert needed > 0 and row["champion_contacts_still_needed"] == needed
    # At the observed rates and the suggested sizes, about 80 % of experiments reach p < 0.05.
    size = int(1_000 + needed)
    draw = np.random.default_rng(2)
    x0, x1 = draw.binomial(size, 0.100, 2_000), draw.binomial(size, 0.125, 2_000)
    pooled = (x0 + x1) / (2 * size)
    z = (x1 - x0) / size / np.sqrt(pooled * (1 - pooled) * 2 / size)
    assert 0.76 <= np.mean(np.abs(z) > 1.96) <= 0.84


def test_no_results_give_an_empty_cube_and_no_test(cx_home) -> None:
    from cx_pipelines.feedback.processing import recorded_results

    frame = with_dimensions(recorded_results())
    cube = performance_cube(frame)
    assert cube.empty and "incremental_response_rate_low" in cube.columns
    assert champion_challenger_tests(frame).empty
