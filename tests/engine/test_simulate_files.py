"""`cx strategy simulate --customers FILE --accounts FILE [--map attribute=column]`.

A population of one's own (CSV or Parquet), no warehouse: what it prints, the warnings for
inputs that are null everywhere, the default event, and the exact errors for missing and
mistyped columns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines.cli import main

ROOT = Path(__file__).resolve().parents[2]
SMALL_BANK = ROOT / "cx_pipelines" / "engine" / "examples" / "small_bank.yaml"
RETAIL = ROOT / "strategies" / "retail_bank.yaml"

CUSTOMERS = """customer_id,annual_income,age,months_on_book,region,\
scores.propensity_credit_card,scores.uplift_savings
G1,150000,40,80,north,0.3,
G2,20000,30,10,south,0.2,
G3,55000,22,5,south,0.1,
"""
ACCOUNTS = """account_id,customer_id,product_type,balance,credit_limit,behaviour_score,\
direct_deposit
G1-C1,G1,credit_card,450,500,650,
G1-S1,G1,savings,1000,,,true
G2-C1,G2,credit_card,900,700,300,
X-1,G9,credit_card,1,1,1,
M-1,G1,mortgage,1,,,
"""
MAPS = ("--map", "income=annual_income", "--map", "account_type=product_type")


def run(capsys, *arguments) -> tuple[int, str, str]:
    code = main(["strategy", "simulate", *map(str, arguments)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    customers, accounts = tmp_path / "customers.csv", tmp_path / "accounts.csv"
    customers.write_text(CUSTOMERS)
    accounts.write_text(ACCOUNTS)
    return customers, accounts


def one_event_strategy(tmp_path: Path) -> Path:
    """small_bank without its inbound_call event."""
    text = SMALL_BANK.read_text()
    event = "  inbound_call:\n    interaction_type: inbound_call\n"
    event += "    processes: [risk, propensity]\n    categorize: false\n"
    assert event in text
    path = tmp_path / "one_event.yaml"
    path.write_text(text.replace(event, ""))
    return path


def test_simulate_from_csv_files_with_a_column_map(capsys, files):
    customers, accounts = files
    code, out, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", *MAPS,
    )  # fmt: skip
    assert code == 0, err
    assert out.splitlines()[:2] == [
        f"population: {customers} (3 customers), {accounts} (5 accounts: 3 read, "
        f"1 of types the strategy does not declare, 1 of customers not in {customers})",
        "simulated small_bank on event periodic_review: 3 customers, 3 accounts",
    ]
    assert "  customer:segment: mass 2 (66.7%), affluent 1 (33.3%)" in out
    assert "  account:credit_card.decision: D3 1 (50.0%), D2 1 (50.0%)" in out
    assert err.splitlines() == [
        "warning: input attribute 'scores.uplift_savings' is null in all 3 customers "
        f"(column 'scores.uplift_savings' of {customers}); every rule reading it sees null"
    ]


def test_parquet_files_give_the_same_report_as_csv(capsys, files, tmp_path):
    customers, accounts = files
    arguments = ("--event", "periodic_review", *MAPS)
    code, from_csv, _ = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, *arguments
    )
    assert code == 0
    frames = {}
    for path in files:
        frame = pd.read_csv(path)
        frames[path] = tmp_path / f"{path.stem}.parquet"
        frame.to_parquet(frames[path])
    code, from_parquet, err = run(
        capsys, SMALL_BANK, "--customers", frames[customers], "--accounts", frames[accounts],
        *arguments,
    )  # fmt: skip
    assert code == 0, err
    first = lambda text: text.split("\n", 1)[1]  # noqa: E731 - the report after the source line
    assert first(from_parquet) == first(from_csv)


def test_the_only_event_is_the_default(capsys, files, tmp_path):
    customers, accounts = files
    strategy = one_event_strategy(tmp_path)
    code, out, err = run(capsys, strategy, "--customers", customers, "--accounts", accounts, *MAPS)
    assert code == 0, err
    assert "simulated small_bank on event periodic_review: 3 customers, 3 accounts" in out


def test_several_events_and_no_choice_is_an_error_listing_them(capsys, files):
    customers, accounts = files
    code, out, err = run(capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts)
    assert code == 1 and out == ""
    assert err == (
        "error: strategy 'small_bank' has 2 events (periodic_review, inbound_call): "
        "choose one with --event\n"
    )


def test_missing_columns_are_errors_naming_file_and_column(capsys, files, tmp_path):
    customers, accounts = files
    customers.write_text(CUSTOMERS.replace("annual_income", "incme"))
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review",
    )  # fmt: skip
    assert code == 1
    columns = (
        "customer_id, incme, age, months_on_book, region, scores.propensity_credit_card, "
        "scores.uplift_savings"
    )
    account_columns = (
        "account_id, customer_id, product_type, balance, credit_limit, behaviour_score, "
        "direct_deposit"
    )
    assert err.splitlines() == [
        f"error: {customers} has no column 'income' for input attribute income (number) "
        f"(did you mean 'incme'?); map one with --map income=COLUMN (columns: {columns})",
        f"error: {accounts} has no column 'account_type'; map one with --map "
        f"account_type=COLUMN (columns: {account_columns})",
    ]


def test_a_missing_account_attribute_column_names_the_account_type(capsys, files):
    customers, accounts = files
    accounts.write_text(ACCOUNTS.replace("behaviour_score", "behavior_score"))
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", *MAPS,
    )  # fmt: skip
    assert code == 1
    assert err.startswith(
        f"error: {accounts} has no column 'behaviour_score' for input attribute "
        "credit_card.behaviour_score (number) of its 3 credit_card accounts "
        "(did you mean 'behavior_score'?); map one with --map credit_card.behaviour_score=COLUMN"
    )


@pytest.mark.parametrize(
    "file, old, new, message",
    [
        (
            "customers",
            "G3,55000,",
            "G3,55k,",
            "{customers}:4: column 'annual_income' holds '55k', not a number (1 such value)",
        ),
        (
            "accounts",
            "G1-S1,G1,savings,1000,,,true",
            "G1-S1,G1,savings,1000,,,maybe",
            "{accounts}:3: column 'direct_deposit' holds 'maybe', not true or false (1 such value)",
        ),
        (
            "customers",
            "G3,55000,",
            "G1,55000,",
            "{customers}:4: customer_id 'G1' appears twice; one row per customer is expected",
        ),
    ],
)
def test_mistyped_values_are_errors_naming_file_line_and_column(
    capsys, files, file, old, new, message
):
    customers, accounts = files
    target = customers if file == "customers" else accounts
    target.write_text(target.read_text().replace(old, new))
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", *MAPS,
    )  # fmt: skip
    assert code == 1
    assert err == "error: " + message.format(customers=customers, accounts=accounts) + "\n"


@pytest.mark.parametrize(
    "mapping, message",
    [
        ("incme=annual_income", "--map incme=...: 'incme' is not an input attribute "
         "(did you mean 'income'?)"),
        ("risk_score=annual_income", "--map risk_score=...: 'risk_score' is derived "
         "(the strategy writes it), not an input"),
        ("income", "--map 'income': write it as attribute=column (income=annual_income)"),
    ],
)  # fmt: skip
def test_bad_maps_are_errors(capsys, files, mapping, message):
    customers, accounts = files
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", "--map", "account_type=product_type", "--map", mapping,
    )  # fmt: skip
    assert code == 1
    assert err.splitlines()[0] == f"error: {message}"


def test_files_are_checked_before_anything_runs(capsys, files, tmp_path):
    customers, accounts = files
    code, _, err = run(capsys, SMALL_BANK, "--accounts", accounts, "--event", "periodic_review")
    assert (code, err) == (1, "error: --accounts and --map need --customers FILE\n")
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--event", "periodic_review", *MAPS[:2]
    )
    assert (code, err) == (
        1,
        "error: the strategy reads accounts of types credit_card, savings: give --accounts FILE\n",
    )
    code, _, err = run(
        capsys, one_event_strategy(tmp_path), "--customers", tmp_path / "people.xlsx"
    )
    assert (code, err) == (
        1,
        f"error: {tmp_path / 'people.xlsx'}: unsupported file type; use .csv or .parquet\n",
    )
    code, _, err = run(capsys, one_event_strategy(tmp_path), "--customers", tmp_path / "nobody.csv")
    assert (code, err) == (1, f"error: {tmp_path / 'nobody.csv'}: no such file\n")


def test_against_works_on_files(capsys, files, tmp_path):
    customers, accounts = files
    text = SMALL_BANK.read_text()
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace("- when: risk_score < 540", "- when: risk_score < 480", 1))
    code, out, err = run(
        capsys, changed, "--against", SMALL_BANK, "--customers", customers, "--accounts",
        accounts, "--event", "periodic_review", *MAPS,
    )  # fmt: skip
    assert code == 0, err
    assert f"against {SMALL_BANK}:" in out
    assert "  account credit_card.decision: 1 of 2 changed (50.0%)" in out


def test_the_warehouse_path_warns_about_all_null_inputs(capsys, cx_home):
    from test_commands import _write_population

    _write_population(50, seed=1)
    code, out, err = run(capsys, RETAIL, "--event", "periodic_review")
    assert code == 0
    assert out.startswith("population: warehouse tables customers, accounts")
    assert (
        "warning: input attribute 'checking.direct_deposit' is null in all 26 checking "
        "accounts; every rule reading it sees null"
    ) in err.splitlines()
    assert (
        "warning: input attribute 'recency_days' is null in all 50 customers; every rule "
        "reading it sees null"
    ) in err.splitlines()


TINY = """strategy: tiny
version: 1
data_dictionary:
  customer:
    customer_id: {type: number}
    joined: {type: date}
    vip: {type: boolean}
    long_standing: {type: boolean, derived: true}
events:
  review: [p]
segments:
  - name: all
processes:
  p: {mechanism: m}
mechanisms:
  m: {type: calculation, value: "vip or joined < date'2020-01-01'", output: long_standing}
"""


def test_dates_booleans_and_numeric_ids_without_accounts(capsys, tmp_path):
    strategy = tmp_path / "tiny.yaml"
    strategy.write_text(TINY)
    customers = tmp_path / "people.csv"
    customers.write_text("id,joined,vip\n1,2019-05-01,no\n2,2024-01-31,YES\n3,2024-02-01,\n")
    code, out, err = run(capsys, strategy, "--customers", customers, "--map", "customer_id=id")
    assert code == 0, err
    assert out.splitlines()[:3] == [
        f"population: {customers} (3 customers)",
        "simulated tiny on event review: 3 customers, 0 accounts",
        "  customer:segment: all 3 (100.0%)",
    ]
    assert "  customer:long_standing: True 2 (66.7%), False 1 (33.3%)" in out
    assert err == ""
    customers.write_text("id,joined,vip\n1,2019-05-01,no\n2,31/01/2024,YES\n")
    code, _, err = run(capsys, strategy, "--customers", customers, "--map", "customer_id=id")
    assert (code, err) == (
        1,
        f"error: {customers}:3: column 'joined' holds '31/01/2024', not a date (YYYY-MM-DD) "
        "(1 such value)\n",
    )


def test_an_empty_account_id_is_an_error_at_its_line(capsys, files):
    customers, accounts = files
    accounts.write_text(ACCOUNTS.replace("G2-C1,G2,", ",G2,"))
    code, _, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", *MAPS,
    )  # fmt: skip
    assert (code, err) == (1, f"error: {accounts}:4: account_id is empty\n")


def test_sample_of_a_customers_file(capsys, files):
    customers, accounts = files
    code, out, err = run(
        capsys, SMALL_BANK, "--customers", customers, "--accounts", accounts, "--event",
        "periodic_review", "--sample", "2", *MAPS,
    )  # fmt: skip
    assert code == 0, err
    first, second = out.splitlines()[:2]
    assert first.startswith(f"population: {customers} (3 customers, 2 sampled), {accounts} (5 ")
    assert first.endswith(" of customers not in the sample)")
    read = int(first.split("accounts: ")[1].split(" read")[0])
    no_customer = int(first.split("declare, ")[1].split(" of customers")[0])
    assert read + 1 + no_customer == 5  # rows reconcile: read + other types + no customer
    assert second.startswith("simulated small_bank on event periodic_review: 2 customers, ")
