"""`cx strategy validate | test | show | diff | simulate`: exit codes and what they print."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines import warehouse
from cx_pipelines.cli import main

ROOT = Path(__file__).resolve().parents[2]
RETAIL = ROOT / "strategies" / "retail_bank.yaml"
OMNICHANNEL = ROOT / "strategies" / "omnichannel.yaml"


def run(capsys, *arguments: str) -> tuple[int, str, str]:
    code = main(["strategy", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def edited_copy(
    tmp_path: Path, old: str, new: str, *, name: str = "edited.yaml"
) -> tuple[Path, int]:
    """A copy of retail_bank.yaml with one edit, and the (1-based) line of the edit."""
    text = RETAIL.read_text()
    assert text.count(old) >= 1, old
    line = text[: text.index(old)].count("\n") + 1
    target = tmp_path / name
    target.write_text(text.replace(old, new, 1))
    return target, line


def test_validate_accepts_the_shipped_strategies(capsys):
    code, out, _ = run(capsys, "validate", ROOT / "strategies")
    assert code == 0
    assert "retail_bank v1" in out and "omnichannel v1" in out
    assert "10 golden cases" in out


def test_validate_names_file_and_line_of_an_unknown_attribute(capsys, tmp_path):
    broken, line = edited_copy(tmp_path, "credit_card.balance <= 500", "credit_card.balanse <= 500")
    code, out, err = run(capsys, "validate", broken)
    assert code == 1
    assert "FAILED" in out
    assert f"{broken}:{line}" in err
    assert "balanse" in err and "credit_card.balance" in err  # the did-you-mean


def test_validate_fails_on_a_missing_file(capsys, tmp_path):
    code, _, err = run(capsys, "validate", tmp_path / "nowhere.yaml")
    assert code == 1
    assert "no such file" in err


def test_test_runs_golden_cases_on_both_evaluators(capsys):
    code, out, _ = run(capsys, "test", RETAIL, OMNICHANNEL)
    assert code == 0
    assert "10 golden cases pass on the batch and per-record evaluators" in out


def test_test_fails_when_a_golden_case_disagrees(capsys, tmp_path):
    broken, _ = edited_copy(
        tmp_path, "credit_card.increase_amount: 400", "credit_card.increase_amount: 450"
    )
    assert run(capsys, "validate", broken)[0] == 0  # well formed; only the expectation is wrong
    code, out, err = run(capsys, "test", broken)
    assert code == 1
    assert "FAILED" in out
    assert "increase_amount" in err and "450" in err


def test_test_fails_on_an_invalid_strategy_with_its_location(capsys, tmp_path):
    broken, line = edited_copy(
        tmp_path, "bands: [[0, 401], [401, 601]", "bands: [[0, 401], [451, 601]"
    )
    code, out, err = run(capsys, "test", broken)
    assert code == 1
    assert f"{broken}:" in err
    assert "does not load" in out


def test_show_renders_trees_matrices_and_scorecards(capsys):
    code, out, _ = run(capsys, "show", RETAIL)
    assert code == 0
    assert "if credit_card.balance <= 500 -> D1" in out
    assert "401 to < 601" in out and "601 to < 801" in out
    assert "challenger_1 10% / challenger_2 10% / champion 80%" in out
    assert "platinum" in out and "waive_all_fees" in out
    code, out, _ = run(capsys, "show", RETAIL, "--mechanism", "limit_increase_matrix")
    row = next(line for line in out.splitlines() if line.strip().startswith("401 to < 601"))
    assert row.split()[5] == "400"  # the cell of risk 401-600
    row = next(line for line in out.splitlines() if line.strip().startswith("601 to < 801"))
    assert row.split()[5] == "500"


def test_show_mermaid_and_unknown_mechanism(capsys):
    code, out, _ = run(capsys, "show", RETAIL, "--mermaid")
    assert code == 0
    assert out.startswith("flowchart LR")
    assert "event_periodic_review" in out and "subgraph tree_card_line_tree" in out
    code, _, err = run(capsys, "show", RETAIL, "--mechanism", "no_such_thing")
    assert code == 1
    assert "no mechanism 'no_such_thing'" in err


def test_diff_lists_changes_by_path(capsys, tmp_path):
    changed, _ = edited_copy(tmp_path, "when: tenure_months < 60", "when: tenure_months < 36")
    code, out, _ = run(capsys, "diff", RETAIL, changed)
    assert code == 0
    assert (
        "mechanisms.card_line_tree.tree[0].when: 'tenure_months < 60' -> 'tenure_months < 36'"
        in out
    )
    assert run(capsys, "diff", RETAIL, changed, "--exit-code")[0] == 1
    code, out, _ = run(capsys, "diff", RETAIL, RETAIL, "--exit-code")
    assert code == 0 and "(same)" in out


def _write_population(size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ids = np.arange(1, size + 1, dtype=np.int64)
    warehouse.write_table(
        "customers",
        pd.DataFrame(
            {
                "customer_id": ids,
                "customer_type": rng.choice(
                    ["mass_market", "affluent", "student", "small_business"], size
                ),
                "region": rng.choice(["north", "south"], size),
                "birth_year": rng.integers(1940, 2005, size),
                "annual_income": rng.choice([15000.0, 45000.0, 120000.0], size),
                "joined_on": [
                    dt.date(2026, 9, 30) - dt.timedelta(days=int(d))
                    for d in rng.integers(0, 4000, size)
                ],
                "email": [f"c{i}@example.com" for i in ids],
            }
        ),
    )
    owners = rng.choice(ids, size * 3)
    kinds = rng.choice(
        ["credit_card", "checking", "savings", "mortgage", "personal_loan"], size * 3
    )
    warehouse.write_table(
        "accounts",
        pd.DataFrame(
            {
                "account_id": np.arange(1, size * 3 + 1, dtype=np.int64),
                "customer_id": owners,
                "product_type": kinds,
                "opened_on": dt.date(2025, 1, 1),
                "status": rng.choice(["open", "open", "open", "closed"], size * 3),
                "balance": rng.choice([100.0, 450.0, 800.0, 20000.0, 150000.0], size * 3),
                "credit_limit": np.where(
                    kinds == "credit_card", rng.choice([400.0, 700.0, 2000.0], size * 3), np.nan
                ),
                "days_past_due": rng.choice([0, 0, 0, 45], size * 3),
                "interest_rate": 0.1,
            }
        ),
    )


def test_simulate_reports_decisions_and_shifts_against_another_strategy(capsys, cx_home, tmp_path):
    _write_population(400, seed=2)
    code, out, _ = run(capsys, "simulate", RETAIL, "--event", "periodic_review")
    assert code == 0
    assert "simulated retail_bank on event periodic_review: 400 customers" in out
    assert "customer:category" in out and "account:credit_card.ccdecsn" in out
    changed, _ = edited_copy(tmp_path, "when: tenure_months < 60", "when: tenure_months < 36")
    report = tmp_path / "report.json"
    code, out, _ = run(
        capsys,
        "simulate",
        changed,
        "--against",
        RETAIL,
        "--event",
        "periodic_review",
        "--json",
        report,
    )
    assert code == 0
    assert "account credit_card.ccdecsn:" in out and "changed" in out
    assert "example customers:" in out
    import json

    data = json.loads(report.read_text())
    shift = next(s for s in data["shifts"] if s["column"] == "credit_card.ccdecsn")
    assert shift["changed"] > 0
    assert {row["segment"] for row in shift["by_segment"]} <= {"business", "premier", "consumer"}
    assert all(t["old"] != t["new"] for t in shift["transitions"])


def test_simulate_fails_without_a_materialised_population(capsys, cx_home):
    code, _, err = run(capsys, "simulate", RETAIL, "--event", "periodic_review")
    assert code == 1
    assert "has not been materialised" in err


def test_simulate_fails_for_an_event_the_strategy_lacks(capsys, cx_home):
    _write_population(20, seed=1)
    code, _, err = run(capsys, "simulate", RETAIL, "--event", "bankruptcy")
    assert code == 1
    assert "no event 'bankruptcy'" in err


@pytest.mark.parametrize("subcommand", ["validate", "test", "show"])
def test_every_subcommand_fails_on_a_broken_file(capsys, tmp_path, subcommand):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        "strategy: x\nversion: 1\nsegments: [{name: all}]\nmechanisms: {m: {type: tree}}\n"
    )
    code, _, err = run(capsys, subcommand, broken)
    assert code == 1
    assert f"{broken}:" in err


def test_simulate_counts_treatments_per_segment(capsys, cx_home, tmp_path):
    _write_population(300, seed=4)
    text = OMNICHANNEL.read_text()
    changed = tmp_path / "omnichannel_no_app_prompt.yaml"
    changed.write_text(text.replace("        - {treatment: app_download_prompt}\n", "", 1))
    code, out, _ = run(
        capsys, "simulate", changed, "--against", OMNICHANNEL, "--event", "periodic_review"
    )
    assert code == 0
    assert "treatments offered (customers with the treatment on any channel):" in out
    row = next(line for line in out.splitlines() if line.strip().startswith("app_download_prompt"))
    before, after = row.split()[1], row.split()[3]
    assert int(before) > 0 and int(after) == 0
    assert "customer web_1_treatment:" in out


def test_schema_prints_the_json_schema_strategy_files_follow(capsys):
    import json

    import jsonschema
    import yaml

    code, out, _ = run(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    jsonschema.validate(yaml.safe_load(RETAIL.read_text()), schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"strategy": "x"}, schema)
