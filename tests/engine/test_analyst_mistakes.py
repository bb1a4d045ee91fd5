"""The mistakes a new strategy analyst makes, tried on the seed 004 fixture: each gives a
clear message naming the file and line (or file and column), asserted word for word."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines.cli import main
from cx_pipelines.engine import check_strategy

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "seed004_bank.yaml"
TEXT = FIXTURE.read_text()


def variant(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    assert TEXT.count(old) == 1, old
    text = TEXT.replace(old, new)
    path = tmp_path / "variant.yaml"
    path.write_text(text)
    return path, text


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def column_of(text: str, fragment: str) -> int:
    start = text.index(fragment)
    return start - text.rfind("\n", 0, start)


def cli(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["strategy", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


ERRORS = {
    "derived attribute read before it is written": (
        "inputs: [profit, risk_score]",
        "inputs: [profit, total_increase]",
        '{id: lp_high_risk, when: ["< 1000", "< 560"]',
        "mechanisms.profile_table.rules[1].when[1]: mechanism 'profile_table' reads "
        "'total_increase' before any mechanism of event 'monthly_review' writes it (it would "
        "be null; written by sum_increase: run that earlier in the event's processes)",
    ),
    "category read in a process": (
        "      - when: profile == 'low_profit_high_risk'",
        "      - when: category == 'gold'",
        "when: category == 'gold'",
        "mechanisms.card_tree.tree[1].when: mechanism 'card_tree' reads 'category', which is "
        "not set yet on event 'monthly_review': category is readable in account actions and "
        "treatments (it is set after the processes)",
    ),
    "test_group read in a segment condition": (
        "when: age < 30",
        "when: test_group == 'champion'",
        "when: test_group == 'champion'",
        "segments[0].when: the segment condition reads 'test_group', which is not set yet: "
        "'test_group' is readable from the processes on (not in segment conditions)",
    ),
    "misspelt golden key at account level": (
        "A1-C2: {credit_card.decision: D4,",
        "A1-C2: {credit_card.decison: D4,",
        "A1-C2: {credit_card.decison",
        'golden_cases[0].expect.accounts["A1-C2"]["credit_card.decison"]: expected '
        "'credit_card.decison' is not a derived attribute of 'credit_card' accounts nor "
        "'action'; expected here: credit_card.decision, credit_card.increase_amount, "
        "credit_card.new_limit, action (did you mean 'credit_card.decision'?)",
    ),
    "decision table cell with a type error": (
        '{id: high_profit, when: [">= 1000", "-"]',
        '{id: high_profit, when: [">= \'a lot\'", "-"]',
        "{id: high_profit",
        # the cell is compiled as `(profit) >= 'a lot'`: the character counts in that text
        "mechanisms.profile_table.rules[0].when[0]: operator '>=' cannot compare NUMBER with "
        "STRING (at character 10 of expression \"(profit) >= 'a lot'\")",
    ),
    "misspelt decision-table input (one error, on the inputs line, not one per cell)": (
        "inputs: [profit, risk_score]",
        "inputs: [profit, risk_scor]",
        "inputs: [profit, risk_scor]",
        "mechanisms.profile_table.inputs[1]: unknown attribute 'risk_scor'; the data "
        "dictionary does not declare it (at column 22 of expression 'risk_scor') (did you "
        "mean 'risk_score'?)",
    ),
    "half-written DMN interval in a cell": (
        '{id: high_profit, when: [">= 1000", "-"]',
        '{id: high_profit, when: ["[1000..]", "-"]',
        "{id: high_profit",
        "mechanisms.profile_table.rules[0].when[0]: cell '[1000..]' is not an interval: write "
        "both ends as numbers, `[a..b]`, `[a..b)`, `(a..b]` or `(a..b)`; for an open end "
        "write a comparison (`>= 600`)",
    ),
    "account action calculating another account type's attribute": (
        '{credit_card.new_limit: "credit_card.credit_limit * 1.05"}',
        '{savings.new_min_balance: "savings.min_balance * 1.05"}',
        'savings.new_min_balance: "savings.min_balance * 1.05',
        'categories.account_actions[2].calculate["savings.new_min_balance"]: an account '
        "action on credit_card accounts calculates 'savings.new_min_balance', an attribute of "
        "savings accounts; it can calculate only `credit_card.<derived attribute>` (calculate "
        "'savings.new_min_balance' in an action with `account_type: savings`)",
    ),
    "collect table with a text `then` into a sum": (
        "then: 40}",
        "then: forty}",
        "{id: delinquent",
        "mechanisms.risk_points_table.rules[0].then: type mismatch: value 'forty' is STRING "
        "but output 'risk_points' is NUMBER",
    ),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_each_mistake_is_one_error_naming_file_line_and_what(tmp_path, capsys, case):
    old, new, where, message = ERRORS[case]
    path, text = variant(tmp_path, old, new)
    errors, _ = check_strategy(path)
    assert [e.describe() for e in errors] == [f"{path}:{line_of(text, where)}, {message}"]
    code, out, err = cli(capsys, "validate", path)
    assert code == 1
    assert f"error: {path}:{line_of(text, where)}, {message}" in err


def test_an_expression_error_gives_the_column_where_the_mistake_is_written(tmp_path):
    # the column used to be the key's (`when` at 9; `calculate`'s key at 19), not the text's
    path, text = variant(
        tmp_path,
        "      - when: profile == 'low_profit_high_risk'",
        "      - when: profil == 'low_profit_high_risk'",
    )
    (error,) = check_strategy(path)[0]
    assert error.describe() == (
        f"{path}:{line_of(text, 'when: profil')}, mechanisms.card_tree.tree[1].when: unknown "
        "attribute 'profil'; the data dictionary does not declare it (at column 15 of "
        "expression \"profil == 'low_profit_high_risk'\") (did you mean 'profile'?)"
    )
    assert error.location.column == column_of(text, "profil ==") == 15
    path, text = variant(
        tmp_path, '"credit_card.credit_limit * 1.05"', '"savings.min_balance * 1.05"'
    )
    (error,) = check_strategy(path)[0]
    column = column_of(text, "savings.min_balance *")  # inside the quotes
    assert column == 43
    assert error.message == (
        "unknown attribute 'savings.min_balance'; the data dictionary does not declare it "
        f"(at column {column} of expression 'savings.min_balance * 1.05')"
    )
    assert error.location.path == 'categories.account_actions[2].calculate["credit_card.new_limit"]'


def test_a_tree_without_else_and_an_overlapping_table_rule_are_warnings(tmp_path):
    path, text = variant(tmp_path, "      - else: D5\n", "")
    errors, warnings = check_strategy(path)
    assert errors == []
    assert [w.describe() for w in warnings] == [
        f"{path}:{line_of(text, '      - when: profile == ' + chr(39) + 'low_profit_low')}, "
        "mechanisms.card_tree.tree[2]: decision tree 'card_tree' has no final `else`: rows "
        "where profile not in ['low_profit_high_risk', 'low_profit_low_risk'] (or profile is "
        "null) get null (add `else:`, or `missing:` for nulls)"
    ]
    path, text = variant(
        tmp_path,
        '      - {id: lp_high_risk, when: ["< 1000", "< 560"]',
        '      - {id: lp_any, when: ["< 1000", "-"], then: low_profit_low_risk}\n'
        '      - {id: lp_high_risk, when: ["< 1000", "< 560"]',
    )
    errors, warnings = check_strategy(path)
    assert errors == []
    assert [w.describe() for w in warnings] == [
        f"{path}:{line_of(text, '{id: ' + rule)}, mechanisms.profile_table.rules[{index}]: "
        f"unreachable rule: {rule} never hits, because lp_any above it matches every input "
        f"that {rule} matches (the first hit wins)"
        for index, rule in ((2, "lp_high_risk"), (3, "lp_low_risk"))
    ]


def test_a_failing_golden_case_names_the_line_of_the_expectation(tmp_path, capsys):
    path, text = variant(
        tmp_path, "credit_card.increase_amount: 400,", "credit_card.increase_amount: 450,"
    )
    code, out, err = cli(capsys, "test", path)
    assert code == 1
    line = line_of(text, "credit_card.increase_amount: 450")
    name = "FIG. 14 low profit low risk customer, card limit 450 score 500 gets D3 and +400"
    assert err.splitlines() == [
        f"fail: {path}:{line}, golden_cases[0]: golden case {name!r} ({evaluator}): account "
        "A1-C1 credit_card.increase_amount: expected 450, got 400.0"
        for evaluator in ("per-record", "batch")
    ]
    # one case fails on both evaluators: said as such, not "2 failures in 2 cases"
    assert out.strip() == (
        f"FAILED {path}: 1 of 2 golden cases fail (2 failure(s) on the batch and per-record "
        "evaluators)"
    )


def population(tmp_path: Path, *, owner_column: str = "cust_no") -> tuple[Path, Path]:
    customers = pd.DataFrame(
        {
            "cust_no": ["A1", "B2"],
            "profit_eur": [200.0, 50.0],
            "delinquencies": [0.0, 3.0],
            "income": [None, None],
            "age": [45.0, 25.0],
            "region": ["north", "south"],
        }
    )
    accounts = pd.DataFrame(
        {
            "acct": ["A1-C1", "B2-C1"],
            owner_column: ["A1", "B2"],
            "account_type": ["credit_card", "credit_card"],
            "balance": [100.0, 300.0],
            "credit_limit": [450.0, 1000.0],
            "bscore": [500.0, 300.0],
        }
    )
    paths = tmp_path / "customers.csv", tmp_path / "accounts.csv"
    customers.to_csv(paths[0], index=False)
    accounts.to_csv(paths[1], index=False)
    return paths


MAPS = ("--map", "customer_id=cust_no", "--map", "account_id=acct")
MAPS += ("--map", "credit_card.behaviour_score=bscore")


def test_simulate_names_a_wrong_map_column_and_an_all_null_input(tmp_path, capsys):
    customers, accounts = population(tmp_path)
    files = ("--customers", customers, "--accounts", accounts)
    code, _, err = cli(capsys, "simulate", FIXTURE, *files, *MAPS, "--map", "profit=profit_usd")
    assert code != 0
    assert err.strip() == (
        f"error: {customers} has no column 'profit_usd' for input attribute profit (number) "
        "(did you mean 'profit_eur'?); map one with --map profit=COLUMN (columns: cust_no, "
        "profit_eur, delinquencies, income, age, region)"
    )
    code, out, err = cli(capsys, "simulate", FIXTURE, *files, *MAPS, "--map", "profit=profit_eur")
    assert code == 0
    assert err.splitlines()[0] == (
        f"warning: input attribute 'income' is null in all 2 customers (column 'income' of "
        f"{customers}); every rule reading it sees null"
    )
    assert "simulated seed004_bank on event monthly_review: 2 customers, 2 accounts" in out


def test_simulate_maps_the_accounts_files_own_customer_column(tmp_path, capsys):
    # the customers extract says `cust_no`, the accounts extract `owner` (seed 004 FIG. 8:
    # separate feeds linked by customer): `--map customer_id=` alone cannot say both
    customers, accounts = population(tmp_path, owner_column="owner")
    files = ("--customers", customers, "--accounts", accounts, "--map", "profit=profit_eur")
    code, _, err = cli(capsys, "simulate", FIXTURE, *files, *MAPS)
    assert code != 0
    assert err.strip() == (
        f"error: {accounts} has no column 'cust_no'; map one with --map "
        "accounts.customer_id=COLUMN (columns: acct, owner, account_type, balance, "
        "credit_limit, bscore)"
    )
    code, out, err = cli(
        capsys, "simulate", FIXTURE, *files, *MAPS, "--map", "accounts.customer_id=owner"
    )
    assert code == 0, err
    assert "2 accounts: 2 read, 0 of types the strategy does not declare, 0 of customers" in out
    (decisions,) = [line for line in out.splitlines() if "account:credit_card.decision" in line]
    assert sorted(decisions.split(": ", 1)[1].split(", ")) == ["D1 1 (50.0%)", "D3 1 (50.0%)"]


def test_show_lists_account_action_calculations(capsys):
    code, out, _ = cli(capsys, "show", FIXTURE)
    assert code == 0
    start = out.index("  account actions (per account, the first that applies):")
    assert out[start:].splitlines()[1:6] == [
        "    platinum: every checking when checking.direct_deposit -> waive_fees",
        "    platinum: every savings -> no_minimum_balance",
        "    gold: every credit_card -> limit_plus_5_percent",
        "      calculate credit_card.new_limit = credit_card.credit_limit * 1.05",
        "    gold: every savings -> minimum_minus_5_percent",
    ]


def test_mermaid_shows_account_actions_in_order_from_their_category(capsys):
    code, out, _ = cli(capsys, "show", "--mermaid", FIXTURE)
    assert code == 0
    lines = out.splitlines()
    start = lines.index(
        '  account_action_3["limit_plus_5_percent; credit_card.new_limit = '
        'credit_card.credit_limit * 1.05"]'
    )
    assert lines[start + 1] == (
        '  first_match_categories_gold -- "3. every credit_card" --> account_action_3'
    )
    assert (
        '  first_match_categories_platinum -- "1. every checking when checking.direct_deposit" '
        "--> account_action_1"
    ) in lines
