"""Champion/challenger experiment files and the split: validation with file and line, a
deterministic split whose arm counts add up, caps split by share, the arm on every row."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from campaign_support import DAY, competing_campaigns, history, population, run, scores

from cx_pipelines.campaigns.catalog import CampaignValidationError
from cx_pipelines.campaigns.experiment import (
    active_experiment,
    arm_campaigns,
    arm_of,
    check_experiment_file,
    check_experiments,
)

VALID = """\
experiment_id: propensity_challenger
description: the incumbents' propensity x value against uplift targeting
start: 2026-09-01
end: 2026-12-31
arms:
  champion: {share: 0.8}
  challenger:
    share: 0.2
    targeting: {value: propensity, exploration: false}
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def experiment_in(tmp_path: Path, text: str = VALID):
    experiment, errors = check_experiment_file(write(tmp_path, "x.yaml", text))
    assert errors == []
    return experiment


def test_a_valid_experiment_loads_with_its_arms_in_file_order(tmp_path):
    experiment = experiment_in(tmp_path)
    assert experiment.arm_names() == ["champion", "challenger"]
    assert experiment.salt == "propensity_challenger"
    challenger = experiment.arms[1].targeting
    assert (challenger.value, challenger.exploration, challenger.scores) == (
        "propensity",
        False,
        None,
    )
    assert experiment.active_on(date(2026, 10, 1)) and not experiment.active_on(date(2027, 1, 1))


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (("  champion: {share: 0.8}", "  champion: {share: 0.7}"), 5, "add up to 1"),
        (("  champion:", "  champ:"), 5, "one arm must be named 'champion'"),
        (("value: propensity", "value: profit"), 9, "value must be one of uplift, propensity"),
        (("start: 2026-09-01", "begin: 2026-09-01"), 3, "unknown key 'begin'"),
        (("end: 2026-12-31", "end: 2026-13-31"), 4, "end must be a date"),
        (("    share: 0.2", "    share: 1.2"), 8, "share must be in (0, 1)"),
        (("exploration: false", "explore: false"), 9, "unknown targeting key 'explore'"),
        (("{value: propensity,", "{value: propensity, scores: a.xlsx,"), 9, ".parquet or .csv"),
    ],
)
def test_every_error_names_the_file_and_line(tmp_path, change, line, message):
    path = write(tmp_path, "bad.yaml", VALID.replace(*change))
    experiment, errors = check_experiment_file(path)
    assert experiment is None
    assert any(e.file == "bad.yaml" and e.line == line and message in e.message for e in errors), [
        e.describe() for e in errors
    ]


def test_two_experiments_on_overlapping_dates_are_refused(tmp_path):
    write(tmp_path, "a.yaml", VALID)
    write(tmp_path, "b.yaml", VALID.replace("propensity_challenger", "second", 1))
    experiments, errors = check_experiments(tmp_path)
    assert [e.file for e in errors] == ["b.yaml"] and "one experiment at a time" in errors[
        0
    ].message
    with pytest.raises(CampaignValidationError, match="b.yaml:1"):
        active_experiment(tmp_path, DAY)
    assert check_experiments(tmp_path / "absent") == ([], [])


def test_the_split_is_deterministic_reconciles_and_follows_the_shares(tmp_path):
    experiment = experiment_in(tmp_path)
    ids = np.arange(1, 40_001, dtype=np.int64) * 3
    arms = arm_of(ids, experiment)
    assert np.array_equal(arms, arm_of(ids, experiment))  # the same on every run
    assert np.array_equal(arm_of(ids[::-1], experiment), arms[::-1])  # per customer, not order
    counts = pd.Series(arms).value_counts()
    assert counts.sum() == len(ids)
    assert counts["challenger"] / len(ids) == pytest.approx(0.2, abs=0.01)
    resalted = arm_of(ids, replace(experiment, salt="another"))
    assert 0.25 < np.mean(resalted != arms) < 0.4  # independent: 2 x 0.8 x 0.2 = 0.32


def test_caps_split_by_share_never_add_up_to_more_than_the_campaign(tmp_path):
    campaigns = competing_campaigns()
    shares = (0.8, 0.2)
    for column, campaign in enumerate(campaigns):
        parts = [arm_campaigns(campaigns, share)[column] for share in shares]
        assert sum(p.volume_cap for p in parts) <= campaign.volume_cap
        assert sum(p.budget for p in parts) <= campaign.budget + 1e-9


def test_targeting_an_experiment_writes_the_arm_on_every_row_within_its_caps(tmp_path):
    experiment = experiment_in(tmp_path)
    frame = population(2_000)
    score_frame = scores(frame)
    result = run(
        frame, score_frame, history(frame, {}), competing_campaigns(), experiment=experiment
    )
    targets = result.targets
    arms = pd.Series(
        arm_of(frame["customer_id"].to_numpy(), experiment), index=frame["customer_id"]
    )
    assert targets["test_group"].notna().all()
    assert (targets["test_group"].to_numpy() == arms[targets["customer_id"]].to_numpy()).all()
    assert not targets["customer_id"].duplicated().any()  # one offer per customer overall
    block = result.summary["experiment"]
    assert block["customers"] == arms.value_counts().to_dict()
    assert sum(block["customers"].values()) == len(frame)
    for arm in experiment.arms:
        mine = targets[(targets["test_group"] == arm.name) & (targets["group"] == "treated")]
        split = {c.campaign_id: c for c in arm_campaigns(competing_campaigns(), arm.share)}
        for campaign_id, count in mine.groupby("campaign_id").size().items():
            assert count <= split[campaign_id].volume_cap
            assert count * split[campaign_id].cost_per_contact <= split[campaign_id].budget + 1e-9
        assert block["per_arm"][arm.name]["treated"] == len(mine)
        # each arm has its own control group
        assert (targets[targets["test_group"] == arm.name]["group"] == "control").any()
    per_campaign = result.summary["per_campaign"]
    for campaign_id, figures in per_campaign.items():
        rows = targets[targets["campaign_id"] == campaign_id]
        assert figures["treated"] + figures["control"] == len(rows)
    challenger = targets[targets["test_group"] == "challenger"]
    assert not challenger["exploration"].any()  # its variant does not explore


def test_without_an_active_experiment_targeting_is_exactly_as_before(tmp_path):
    frame = population(800)
    score_frame = scores(frame)
    contacts = history(frame, {})
    plain = run(frame, score_frame, contacts, competing_campaigns())
    ended = replace(experiment_in(tmp_path), end=date(2026, 9, 2))
    inactive = run(frame, score_frame, contacts, competing_campaigns(), experiment=ended)
    pd.testing.assert_frame_equal(plain.targets, inactive.targets)
    assert plain.targets["test_group"].isna().all()
    assert "experiment" not in plain.summary
