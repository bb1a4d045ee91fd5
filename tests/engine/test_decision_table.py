"""The `decision_table` mechanism kind: hit policies, both evaluators, traces, load errors
and warnings with file:line, and a translated zen table against zen-engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.engine import check_strategy, evaluate_batch, evaluate_customer, load_strategy
from cx_pipelines.engine.evaluation.shared import trace_json
from cx_pipelines.engine.tools.render import render_text

ROOT = Path(__file__).resolve().parents[2]

STRATEGY = """strategy: tables
version: 1
data_dictionary:
  customer:
    customer_id: {type: string}
    risk_score: {type: number}
    region: {type: string}
    action: {type: string, derived: true}
    fee_waivers: {type: number, derived: true}
    flags: {type: string, derived: true}
    lowest_rate: {type: number, derived: true}
    matching_rules: {type: number, derived: true}
  accounts:
    credit_card:
      attributes:
        balance: {type: number}
        credit_limit: {type: number}
        limit_step: {type: number, derived: true}
channels: [email]
events:
  review: [tables]
segments:
  - name: everyone
processes:
  tables:
    mechanisms: [action_table, waivers, flag_list, best_rate, rule_count, card_steps]
mechanisms:
  action_table:
    type: decision_table
    output: action
    inputs: [risk_score, region]
    rules:
      - {id: block, when: [">= 900", "-"], then: block}
      - {when: ["[600..900)", "in ['north', 'east']"], then: review_north}
      - {when: ["[600..900)", "-"], then: review}
      - {id: fallback, when: ["< 600", "-"], then: approve}
  waivers:
    type: decision_table
    output: fee_waivers
    hit_policy: collect
    aggregate: sum
    inputs: [risk_score, region]
    rules:
      - {when: ["< 500", "-"], then: 10}
      - {when: ["-", "'north'"], then: 2.5}
      - {when: ["-", "is null"], then: 1}
  flag_list:
    type: decision_table
    output: flags
    hit_policy: collect
    aggregate: list
    inputs: [risk_score]
    rules:
      - {when: ["> 800"], then: high_risk}
      - {when: ["> 300"], then: watch}
      - {when: ["is null"], then: unscored}
  best_rate:
    type: decision_table
    output: lowest_rate
    hit_policy: collect
    aggregate: min
    inputs: [risk_score]
    rules:
      - {when: ["< 700"], then: 4.5}
      - {when: ["< 400"], then: 3.9}
    default: 9.9
  rule_count:
    type: decision_table
    output: matching_rules
    hit_policy: collect
    aggregate: count
    inputs: [risk_score, region]
    rules:
      - {when: ["< 700", "-"]}
      - {when: ["-", "'north'"]}
  card_steps:                    # iterative: one row per card
    type: decision_table
    over: credit_card
    output: credit_card.limit_step
    inputs: [credit_card.balance / credit_card.credit_limit, risk_score]
    rules:
      - {when: ["> 0.9", "-"], then: 0}
      - {when: ["-", "< 500"], then: 500}
    default: 100
"""

CUSTOMERS = [
    {"customer_id": "a", "risk_score": 950.0, "region": "north"},
    {"customer_id": "b", "risk_score": 650.0, "region": "north"},
    {"customer_id": "c", "risk_score": 650.0, "region": "south"},
    {"customer_id": "d", "risk_score": 350.0, "region": None},
    {"customer_id": "e", "risk_score": None, "region": "east"},
]
ACCOUNTS = [
    {
        "account_id": "a1",
        "customer_id": "a",
        "account_type": "credit_card",
        "balance": 950.0,
        "credit_limit": 1000.0,
    },
    {
        "account_id": "d1",
        "customer_id": "d",
        "account_type": "credit_card",
        "balance": 10.0,
        "credit_limit": 1000.0,
    },
    {
        "account_id": "d2",
        "customer_id": "d",
        "account_type": "credit_card",
        "balance": 10.0,
        "credit_limit": None,
    },
]


def write(tmp_path: Path, text: str = STRATEGY) -> Path:
    path = tmp_path / "tables.yaml"
    path.write_text(text)
    return path


def line_of(text: str, fragment: str) -> int:
    assert text.count(fragment) == 1, fragment
    return text[: text.index(fragment)].count("\n") + 1


def record_of(strategy, customer):
    accounts = [a for a in ACCOUNTS if a["customer_id"] == customer["customer_id"]]
    return evaluate_customer(strategy, event="review", customer=customer, accounts=accounts)


def test_hit_policies_give_the_documented_values_and_traces_name_the_rules(tmp_path):
    strategy = load_strategy(write(tmp_path))
    records = {c["customer_id"]: record_of(strategy, c) for c in CUSTOMERS}
    assert {k: r["attributes"]["action"] for k, r in records.items()} == {
        "a": "block",
        "b": "review_north",
        "c": "review",
        "d": "approve",
        "e": None,
    }
    assert {k: r["attributes"]["fee_waivers"] for k, r in records.items()} == {
        "a": 2.5,
        "b": 2.5,
        "c": 0.0,
        "d": 11.0,
        "e": 0.0,
    }
    assert {k: r["attributes"]["flags"] for k, r in records.items()} == {
        "a": "high_risk,watch",
        "b": "watch",
        "c": "watch",
        "d": "watch",
        "e": "unscored",
    }
    assert {k: r["attributes"]["lowest_rate"] for k, r in records.items()} == {
        "a": 9.9,
        "b": 4.5,
        "c": 4.5,
        "d": 3.9,
        "e": 9.9,
    }
    assert {k: r["attributes"]["matching_rules"] for k, r in records.items()} == {
        "a": 1.0,
        "b": 2.0,
        "c": 1.0,
        "d": 1.0,
        "e": 0.0,
    }
    steps = {s["mechanism"]: s for s in records["b"]["trace"]["steps"]}
    assert steps["action_table"]["rule"] == "rules[1]"
    assert steps["waivers"]["rules"] == ["rules[1]"]
    assert steps["rule_count"]["rules"] == ["rules[0]", "rules[1]"]
    first = {s["mechanism"]: s for s in records["a"]["trace"]["steps"]}
    assert first["action_table"] == {
        "process": "tables",
        "mechanism": "action_table",
        "type": "decision_table",
        "rule": "block",
        "value": "block",
    }
    assert {s["mechanism"]: s for s in records["e"]["trace"]["steps"]}["action_table"][
        "rule"
    ] is None
    cards = {
        a["account_id"]: a["attributes"]["credit_card.limit_step"] for a in records["d"]["accounts"]
    }
    assert cards == {"d1": 500.0, "d2": 500.0}  # d2: no limit, the ratio is null
    assert records["a"]["accounts"][0]["attributes"]["credit_card.limit_step"] == 0.0
    assert records["a"]["trace"]["accounts"]["a1"][0]["rule"] == "rules[0]"


def test_batch_and_per_record_agree_on_values_and_trace_text(tmp_path):
    strategy = load_strategy(write(tmp_path))
    rng = np.random.default_rng(3)
    size = 400
    customers = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(size)],
            "risk_score": np.where(
                rng.random(size) < 0.1,
                np.nan,
                rng.choice(
                    [0, 299, 300, 400, 499, 500, 599, 600, 699, 700, 800, 801, 899, 900, 999], size
                ),
            ).astype(float),
            "region": rng.choice(np.array(["north", "east", "south", None], dtype=object), size),
        }
    )
    owners = rng.integers(0, size, 600)
    accounts = pd.DataFrame(
        {
            "account_id": [f"k{i}" for i in range(600)],
            "customer_id": [f"c{i}" for i in owners],
            "account_type": "credit_card",
            "balance": rng.uniform(0, 1200, 600).round(0),
            "credit_limit": np.where(rng.random(600) < 0.1, np.nan, 1000.0),
        }
    ).sort_values("customer_id", kind="stable")
    batch = evaluate_batch(strategy, event="review", customers=customers, accounts=accounts)
    records = batch.records()
    by_customer = {key: group.to_dict("records") for key, group in accounts.groupby("customer_id")}
    for position, customer in enumerate(customers.to_dict("records")):
        expected = evaluate_customer(
            strategy,
            event="review",
            customer=customer,
            accounts=by_customer.get(customer["customer_id"], []),
        )
        assert records[position] == expected
        assert batch.customers["trace"][position] == trace_json(expected["trace"])


@pytest.mark.parametrize(
    ("old", "new", "fragment", "message"),
    [
        (
            '      - {when: ["[600..900)", "-"], then: review}',
            '      - {when: ["[600..900)"], then: review}',
            '      - {when: ["[600..900)"], then: review}',
            "the rule has 1 cells but the table has 2 inputs (risk_score, region); "
            "write '-' for any value",
        ),
        (
            "    aggregate: list\n",
            "",
            "    hit_policy: collect\n    inputs: [risk_score]",
            "`hit_policy: collect` needs `aggregate:` (list, sum, min, max or count)",
        ),
        (
            '      - {when: ["< 400"], then: 3.9}',
            "      - {when: [\"< 400\"], then: 'cheap'}",
            "      - {when: [\"< 400\"], then: 'cheap'}",
            "type mismatch: value 'cheap' is STRING but output 'lowest_rate' is NUMBER",
        ),
    ],
)
def test_load_errors_name_the_file_and_line(tmp_path, old, new, fragment, message):
    text = STRATEGY.replace(old, new)
    assert text != STRATEGY
    path = write(tmp_path, text)
    errors, _ = check_strategy(path)
    assert [e.message for e in errors] == [message]
    assert errors[0].location.file == str(path)
    assert errors[0].location.line == line_of(text, fragment)


def test_a_cell_of_the_wrong_type_is_a_type_error_at_its_line(tmp_path):
    text = STRATEGY.replace('"< 600", "-"], then: approve', '"< \'low\'", "-"], then: approve')
    path = write(tmp_path, text)
    errors, _ = check_strategy(path)
    assert len(errors) == 1
    assert errors[0].location.path == "mechanisms.action_table.rules[3].when[0]"
    assert errors[0].location.line == line_of(text, "{id: fallback")
    assert "(risk_score) < 'low'" in errors[0].message


def test_unreachable_and_incomplete_tables_are_warnings(tmp_path):
    text = STRATEGY.replace(
        '      - {id: fallback, when: ["< 600", "-"], then: approve}',
        '      - {id: fallback, when: ["< 500", "-"], then: approve}\n'
        '      - {id: shadowed, when: ["[700..800)", "\'north\'"], then: never}',
    )
    path = write(tmp_path, text)
    errors, warnings = check_strategy(path)
    assert errors == []
    messages = {w.message: w.location.line for w in warnings}
    assert messages == {
        "unreachable rule: shadowed never hits, because rules[1] above it matches every "
        "input that shadowed matches (the first hit wins)": line_of(text, "{id: shadowed"),
        "incomplete decision table: no rule matches risk_score == 500 "
        "(those get null; add a rule or `default:`)": line_of(
            text, "    rules:\n      - {id: block"
        ),
    }
    clean_errors, clean_warnings = check_strategy(write(tmp_path))
    assert clean_errors == [] and clean_warnings == []


def test_show_prints_the_table(tmp_path):
    text = render_text(load_strategy(write(tmp_path)), mechanism="action_table")
    assert "hit policy first; inputs: risk_score | region" in text
    assert "block: >= 900 | - -> 'block'" in text
    assert "rules[1]: [600..900) | in ['north', 'east'] -> 'review_north'" in text


def test_a_zen_table_translated_into_a_decision_table_agrees_with_zen_engine(tmp_path):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import zen_table
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    import yaml
    import zen  # zen-engine is a test dependency (pyproject dev extras)

    source = ROOT / "benchmarks" / "data" / "decision_table.json"
    table = zen_table.read_zen_table(source)

    def cell(condition) -> str:
        if condition is None:
            return "-"
        if isinstance(condition, zen_table.OneOf):
            return (
                "in [" + ", ".join(json.dumps(v).replace('"', "'") for v in condition.values) + "]"
            )
        if condition.low is None:
            return ("<= " if condition.high_inclusive else "< ") + f"{condition.high:g}"
        if condition.high is None:
            return (">= " if condition.low_inclusive else "> ") + f"{condition.low:g}"
        opening = "[" if condition.low_inclusive else "("
        closing = "]" if condition.high_inclusive else ")"
        return f"{opening}{condition.low:g}..{condition.high:g}{closing}"

    fields = [zen_table.attribute_name(f) for f in table.input_fields]
    output = table.output_fields[0]
    document = {
        "strategy": "zen_as_table",
        "data_dictionary": {
            "customer": {
                "customer_id": {"type": "string"},
                "risk_score": {"type": "number"},
                "balance": {"type": "number"},
                "request_segment": {"type": "string"},
                "request_channel": {"type": "string"},
                output: {"type": "string", "derived": True},
            }
        },
        "events": {"decide": ["decide"]},
        "segments": [{"name": "all"}],
        "processes": {"decide": {"mechanism": "table"}},
        "mechanisms": {
            "table": {
                "type": "decision_table",
                "output": output,
                "inputs": fields,
                "rules": [
                    {
                        "id": rule.rule_id,
                        "when": [cell(rule.conditions[f]) for f in table.input_fields],
                        "then": rule.outputs[output],
                    }
                    for rule in table.rules
                ],
            }
        },
    }
    path = tmp_path / "zen_table.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    strategy = load_strategy(path)
    rng = np.random.default_rng(11)
    size = 2000
    records = pd.DataFrame(
        {
            "customer_id": [str(i) for i in range(size)],
            "risk_score": rng.integers(0, 1000, size).astype(float),
            "balance": rng.choice(
                [0, 499, 500, 999, 1000, 20000, 49999, 50000, 99999, 100000, 150000], size
            ).astype(float),
            "request_segment": rng.choice(["mass", "affluent", "private", "sme"], size),
            "request_channel": rng.choice(["web", "app", "branch", "call", "email"], size),
        }
    )
    ours = evaluate_batch(strategy, event="decide", customers=records, trace=False)
    engine = zen.ZenEngine(
        {"loader": {"type": "static", "content": {"t": json.loads(source.read_text())}}}
    )
    theirs = [
        engine.evaluate(
            "t",
            {
                "risk_score": r.risk_score,
                "balance": r.balance,
                "segment": r.request_segment,
                "channel": r.request_channel,
            },
        )["result"].get(output)
        for r in records.itertuples()
    ]
    assert ours.customers[output].tolist() == theirs
    per_record = [
        evaluate_customer(strategy, event="decide", customer=row)["attributes"][output]
        for row in records.head(300).to_dict("records")
    ]
    assert per_record == theirs[:300]
