"""Campaign files: the shipped set validates; every error names file and line."""

from __future__ import annotations

import textwrap
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.campaigns import CampaignValidationError, check_campaigns, load_campaigns
from cx_pipelines.campaigns.catalog import check_campaign_file
from cx_pipelines.campaigns.rules import RuleError, parse_rule

SHIPPED = Path(__file__).resolve().parents[2] / "strategies" / "campaigns"

VALID = """\
campaign_id: test_campaign
offer: credit_card
treatment: credit_card_offer
channel: email
eligibility:
  all:
    - {attribute: age, at_least: 18}
    - {attribute: customer_type, in: [student, mass_market]}
cost_per_contact: 0.1
margin_per_response: 100
volume_cap: 50
control_share: 0.1
start: 2026-09-01
end: 2026-12-31
"""


def test_shipped_campaigns_validate_and_compete() -> None:
    campaigns = load_campaigns(SHIPPED)
    assert 5 <= len(campaigns) <= 12
    active = [c for c in campaigns if c.active_on(date(2026, 10, 1))]
    assert len({c.offer for c in active}) >= 4
    assert len({c.channel for c in active}) >= 4
    assert any(not c.active_on(date(2026, 10, 1)) for c in campaigns)
    assert all(np.isfinite(c.budget) or np.isfinite(c.volume_cap) for c in campaigns)


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def replace_line(text: str, old: str, new: str) -> str:
    assert old in text
    return text.replace(old, new)


@pytest.mark.parametrize(
    ("edit", "line", "message"),
    [
        (lambda t: replace_line(t, "offer: credit_card", "offer: credit_crd"), 2,
         "unknown offer 'credit_crd'; did you mean 'credit_card'?"),
        (lambda t: replace_line(t, "channel: email", "channel: fax"), 4, "unknown channel 'fax'"),
        (lambda t: replace_line(t, "attribute: customer_type", "attribute: customer_typ"), 8,
         "eligibility: unknown attribute 'customer_typ'; did you mean 'customer_type'?"),
        (lambda t: replace_line(t, "in: [student", "at_least: [student"), 8,
         "at_least compares numbers; 'customer_type' is a string"),
        (lambda t: replace_line(t, "at_least: 18", "at_least: '18'"), 7, "'age' is a number"),
        (lambda t: replace_line(t, "control_share: 0.1", "control_share: 1.5"), 12,
         "control_share must be in [0, 1), got 1.5"),
        (lambda t: replace_line(t, "start: 2026-09-01", "start: 2026-13-01"), 13,
         "start must be a date YYYY-MM-DD"),
        (lambda t: replace_line(t, "end: 2026-12-31", "end: 2026-08-01"), 14,
         "end 2026-08-01 is before start 2026-09-01"),
        (lambda t: replace_line(t, "volume_cap: 50", "volume_cap: -5"), 11,
         "volume_cap must be >= 0.0, got -5"),
        (lambda t: replace_line(t, "volume_cap: 50", "volume_cap: 50\nbudgett: 10"), 12,
         "unknown key 'budgett'; did you mean 'budget'?"),
        (lambda t: replace_line(t, "volume_cap: 50\n", ""), 1,
         "a campaign needs a budget, a volume_cap or both"),
        (lambda t: replace_line(t, "treatment: credit_card_offer\n", ""), 1,
         "missing required key 'treatment'"),
        (lambda t: replace_line(t, "margin_per_response: 100", "margin_per_response: 0"), 10,
         "margin_per_response must be > 0.0"),
        (lambda t: replace_line(t, "at_least: 18}", "at_least: 18"), 8,
         "YAML syntax"),
    ],
)  # fmt: skip
def test_errors_name_file_line_and_problem(tmp_path: Path, edit, line: int, message: str) -> None:
    write(tmp_path, "broken.yaml", edit(VALID))
    campaigns, errors = check_campaigns(tmp_path)
    assert campaigns == []
    described = [error.describe() for error in errors]
    assert any(d.startswith(f"broken.yaml:{line}: ") and message in d for d in described), described


def test_valid_file_loads_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", VALID)
    campaign, errors = check_campaign_file(tmp_path / "a.yaml")
    assert errors == [] and campaign.campaign_id == "test_campaign"
    assert campaign.budget == np.inf and campaign.volume_cap == 50
    assert campaign.salt == "test_campaign" and len(campaign.content_hash) == 12
    write(tmp_path, "b.yaml", VALID)
    with pytest.raises(CampaignValidationError, match=r"b.yaml:1: campaign_id 'test_campaign'"):
        load_campaigns(tmp_path)


def test_every_error_of_a_file_is_reported(tmp_path: Path) -> None:
    text = replace_line(VALID, "offer: credit_card", "offer: cars")
    text = replace_line(text, "control_share: 0.1", "control_share: -0.1")
    write(tmp_path, "two.yaml", text)
    _, errors = check_campaigns(tmp_path)
    assert [(e.line, e.message.split(" ")[0]) for e in errors] == [
        (2, "unknown"),
        (12, "control_share"),
    ]


def test_rule_semantics_nulls_read_false() -> None:
    population = pd.DataFrame(
        {
            "age": [17.0, 30.0, np.nan, 70.0],
            "customer_type": ["student", "senior", "student", None],
        }
    )
    rule = parse_rule(
        {
            "any": [
                {"all": [{"attribute": "age", "at_least": 18}, {"attribute": "age", "below": 65}]},
                {"attribute": "customer_type", "not_in": ["student"]},
            ]
        }
    )
    assert rule.evaluate(population).tolist() == [False, True, False, False]
    assert parse_rule({"not": {"attribute": "age", "is_null": True}}).evaluate(
        population
    ).tolist() == [True, True, False, True]
    assert parse_rule({"attribute": "age", "not_equals": 30}).evaluate(population).tolist() == [
        True,
        False,
        False,
        True,
    ]
    assert parse_rule({"all": []}).evaluate(population).all()
    assert "age at_least 18" in rule.describe()


def test_rule_errors_carry_their_path() -> None:
    with pytest.raises(RuleError) as caught:
        parse_rule(
            {"all": [{"attribute": "age", "at_least": 1}, {"attribute": "agee", "equals": 1}]}
        )
    assert caught.value.path == ("all", 1, "attribute")
    with pytest.raises(RuleError, match="exactly one operator"):
        parse_rule({"attribute": "age", "at_least": 1, "at_most": 3})
