"""Decision trees: a `missing:` branch for nulls, and a warning for branch lists without a
final `else` that says which rows fall through to null."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cx_pipelines.engine import check_strategy, evaluate_batch, evaluate_customer, load_strategy
from cx_pipelines.engine.evaluation.shared import trace_json

TREE = """strategy: trees
data_dictionary:
  customer:
    customer_id: {type: string}
    income: {type: number}
    region: {type: string}
    band: {type: string, derived: true}
events:
  review: [banding]
segments:
  - name: all
processes:
  banding: {mechanism: band_tree}
mechanisms:
  band_tree:
    type: decision_tree
    output: band
    tree:
      - missing: income
        then: unknown
      - when: income < 30000
        then: low
      - when: income < 100000
        then: middle
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "trees.yaml"
    path.write_text(text)
    return path


def line_of(text: str, fragment: str) -> int:
    assert text.count(fragment) == 1, fragment
    return text[: text.index(fragment)].count("\n") + 1


def test_the_missing_branch_takes_nulls_on_both_evaluators(tmp_path):
    strategy = load_strategy(write(tmp_path, TREE))
    customers = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "income": [None, 10000.0, 50000.0, 250000.0],
            "region": ["x", "y", None, "z"],
        }
    )
    batch = evaluate_batch(strategy, event="review", customers=customers)
    assert batch.customers["band"].tolist() == ["unknown", "low", "middle", None]
    for position, row in enumerate(customers.to_dict("records")):
        record = evaluate_customer(strategy, event="review", customer=row)
        assert batch.records()[position] == record
        assert batch.customers["trace"][position] == trace_json(record["trace"])
    first = evaluate_customer(strategy, event="review", customer=customers.iloc[0].to_dict())
    assert first["trace"]["steps"][0]["path"] == "tree[0].then"


@pytest.mark.parametrize(
    ("old", "new", "rows"),
    [
        ("", "", "income >= 100000"),
        (
            "      - missing: income\n        then: unknown\n",
            "",
            "income >= 100000 (or income is null)",
        ),
        (
            "      - when: income < 100000\n",
            "      - when: income < 100000 or region == 'north'\n",
            "none of the conditions hold",
        ),
        (
            "      - when: income < 100000\n",
            "      - when: income >= 30000\n",
            "",
        ),
        (
            "      - missing: income\n        then: unknown\n      - when: income < 30000\n",
            "      - when: income < 30000\n",
            "income >= 100000 (or income is null)",
        ),
    ],
)
def test_a_tree_without_a_final_else_warns_which_rows_get_null(tmp_path, old, new, rows):
    text = TREE.replace(old, new) if old else TREE
    errors, warnings = check_strategy(write(tmp_path, text))
    assert errors == []
    if not rows:  # every non-null income is caught and nulls have their branch
        assert warnings == []
        return
    assert [w.message for w in warnings] == [
        f"decision tree 'band_tree' has no final `else`: rows where {rows} get null "
        "(add `else:`, or `missing:` for nulls)"
    ]
    last = text.rstrip().rsplit("\n", 2)[-2]
    assert warnings[0].location.line == line_of(text, last + "\n")


def test_nested_lists_are_checked_with_what_their_parents_imply(tmp_path):
    text = TREE.replace(
        "      - when: income < 100000\n        then: middle\n",
        "      - else:\n          - when: income < 100000\n            then: middle\n",
    )
    _, warnings = check_strategy(write(tmp_path, text))
    assert [w.message for w in warnings] == [
        "decision tree 'band_tree' has no final `else`: rows where income >= 100000 get null "
        "(add `else:`, or `missing:` for nulls)"
    ]
    assert warnings[0].location.path == "mechanisms.band_tree.tree[2].else[0]"
    assert check_strategy(write(tmp_path, TREE + "      - else: high\n")) == ([], [])
