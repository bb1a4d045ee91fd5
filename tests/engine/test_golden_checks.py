"""Golden cases: every expectation key and name is checked when the strategy loads (a
misspelling is an error at file:line with a did-you-mean), and a failing case names the
line of the expectation that failed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cx_pipelines.cli import main
from cx_pipelines.engine import check_strategy, load_strategy, run_golden_cases

SMALL_BANK = Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine" / "examples"
SMALL_BANK = SMALL_BANK / "small_bank.yaml"


def edited(tmp_path: Path, old: str, new: str) -> tuple[Path, int]:
    """small_bank.yaml with one edit, and the line where the edit starts to differ."""
    text = SMALL_BANK.read_text()
    assert text.count(old) == 1, old
    path = tmp_path / "edited.yaml"
    path.write_text(text.replace(old, new))
    same = os.path.commonprefix([old, new])
    return path, text[: text.index(old)].count("\n") + same.count("\n") + 1


def run(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["strategy", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


CARD_EXPECT = "G1-C1: {credit_card.decision: D3, credit_card.limit_increase: 500,"
OUTPUTS = "credit_card.decision, credit_card.limit_increase, action"


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            CARD_EXPECT,
            "G1-C1: {credit_card.decision: D3, credit_card.limit_increse: 500,",
            'golden_cases[0].expect.accounts["G1-C1"]["credit_card.limit_increse"]: expected '
            "'credit_card.limit_increse' is not a derived attribute of 'credit_card' accounts "
            f"nor 'action'; expected here: {OUTPUTS} (did you mean 'credit_card.limit_increase'?)",
        ),
        (
            CARD_EXPECT,
            "G1-C1: {decision: D3, credit_card.limit_increase: 500,",
            "golden_cases[0].expect.accounts[\"G1-C1\"].decision: expected 'decision' is not a "
            f"derived attribute of 'credit_card' accounts nor 'action'; expected here: {OUTPUTS} "
            "(did you mean 'credit_card.decision'?)",
        ),
        (
            "G1-S1: {action: waive_fees}",
            "G1-S1: {savings.balance: 1000}",
            'golden_cases[0].expect.accounts["G1-S1"]["savings.balance"]: expected '
            "'savings.balance' is an input of 'savings' accounts, not an output; expected here: "
            "action",
        ),
        (
            "G1-S1: {action: waive_fees}",
            "G1-S2: {action: waive_fees}",
            "golden_cases[0].expect.accounts[\"G1-S2\"]: expected account 'G1-S2' is not among "
            "the case's accounts (G1-C1, G1-S1) (did you mean 'G1-S1'?)",
        ),
        (
            "      category: platinum\n",
            "      category: platnum\n",
            "golden_cases[0].expect.category: unknown category 'platnum'; known: platinum, gold, "
            "bronze (did you mean 'platinum'?)",
        ),
        (
            "      segment: affluent\n",
            "      segmnet: affluent\n",
            "golden_cases[0].expect.segmnet: unknown key 'segmnet'; allowed here: segment, "
            "test_group, category, attributes, treatments, accounts (did you mean 'segment'?)",
        ),
        (
            "      test_group: champion\n",
            "      test_group: champoin\n",
            "golden_cases[0].expect.test_group: unknown test group 'champoin'; known: challenger, "
            "champion (did you mean 'champion'?)",
        ),
        (
            "treatments: {email: [credit_card_offer, service_message]}",
            "treatments: {email: [credit_card_ofer, service_message]}",
            "golden_cases[0].expect.treatments.email[0]: unknown treatment 'credit_card_ofer'; "
            "known: credit_card_offer, savings_offer, retention_call, service_message "
            "(did you mean 'credit_card_offer'?)",
        ),
        (
            "treatments: {email: [credit_card_offer, service_message]}",
            "treatments: {emial: [credit_card_offer, service_message]}",
            "golden_cases[0].expect.treatments.emial: unknown channel 'emial'; known: email, "
            "call_centre, branch (did you mean 'email'?)",
        ),
        (
            "attributes: {risk_score: 615,",
            "attributes: {risk_scor: 615,",
            "golden_cases[0].expect.attributes.risk_scor: expected attribute 'risk_scor' is not "
            "a customer attribute (did you mean 'risk_score'?)",
        ),
        (
            "attributes: {risk_score: 615,",
            "attributes: {income: 150000, risk_score: 615,",
            "golden_cases[0].expect.attributes.income: expected attribute 'income' is an input; "
            "a golden case expects derived attributes (what the strategy writes)",
        ),
        (
            "    contact_history: []\n",
            "    contact_history: [{customer_id: G1, channel: email, days_agoo: 3}]\n",
            "golden_cases[0].contact_history[0].days_agoo: contact history has 'days_agoo'; its "
            "columns are customer_id, channel, treatment, days_ago, declined "
            "(did you mean 'days_ago'?)",
        ),
        (
            " balance: 1000, direct_deposit: true}\n",
            " balance: 1000, direct_deposit: true}\n"
            "      - {account_id: G1-C1, account_type: credit_card, balance: 1, credit_limit: 1,"
            " behaviour_score: 1}\n",
            "golden_cases[0].accounts[2].account_id: account_id 'G1-C1' appears twice in the "
            "case's accounts",
        ),
    ],
)
def test_a_misspelt_golden_expectation_is_a_load_error_at_its_line(
    capsys, tmp_path, old, new, message
):
    path, line = edited(tmp_path, old, new)
    errors, _ = check_strategy(path)
    assert [error.describe() for error in errors] == [f"{path}:{line}, {message}"]
    code, out, err = run(capsys, "validate", path)
    assert code == 1
    assert err == f"error: {path}:{line}, {message}\n"
    assert out == f"FAILED {path}: 1 error(s), 0 warning(s)\n"


def test_a_failing_golden_case_names_the_line_of_its_expectation(capsys, tmp_path):
    path, line = edited(
        tmp_path, "credit_card.limit_increase: 500,", "credit_card.limit_increase: 550,"
    )
    code, out, err = run(capsys, "test", path)
    assert code == 1
    case = "golden case 'affluent customer, one card under limit gets D3 and a matrix increase'"
    problem = "account G1-C1 credit_card.limit_increase: expected 550, got 500.0"
    assert err.splitlines() == [
        f"fail: {path}:{line}, golden_cases[0]: {case} (per-record): {problem}",
        f"fail: {path}:{line}, golden_cases[0]: {case} (batch): {problem}",
    ]
    assert out == (
        f"FAILED {path}: 1 of 1 golden cases fail "
        "(2 failure(s) on the batch and per-record evaluators)\n"
    )


def test_every_failing_expectation_has_its_own_line(tmp_path):
    text = SMALL_BANK.read_text()
    text = text.replace("      category: platinum\n", "      category: gold\n")
    text = text.replace("risk_band: low, cards_to_review", "risk_band: high, cards_to_review")
    path = tmp_path / "two.yaml"
    path.write_text(text)
    lines = text.splitlines()
    failures = run_golden_cases(load_strategy(path))
    found = {(f.location.line, f.message.split(": ", 1)[1]) for f in failures}
    assert found == {
        (lines.index("      category: gold") + 1, "category: expected 'gold', got 'platinum'"),
        (
            next(i for i, text in enumerate(lines) if "risk_band: high" in text) + 1,
            "attribute risk_band: expected 'high', got 'low'",
        ),
    }
    assert all(f.location.file == str(path) for f in failures) and len(failures) == 4


def test_a_golden_case_that_cannot_run_names_the_line_of_the_case(tmp_path):
    path, line = edited(
        tmp_path,
        "  - name: affluent customer, one card under limit",
        "  - name: affluent customer, one card under limit",
    )
    strategy = load_strategy(path)
    assert strategy.golden_cases[0].line == line
    strategy.golden_cases[0].data["event"] = "no_such_event"  # past the load-time check
    (failure,) = run_golden_cases(strategy)
    assert failure.location.line == line
    assert failure.describe().startswith(f"{path}:{line}, golden_cases[0]: golden case ")
    assert "could not run" in failure.message
