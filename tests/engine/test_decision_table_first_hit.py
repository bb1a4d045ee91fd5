"""A first-hit table stops at the first matching rule on both per-record forms: the
reference form used to evaluate every later rule too, so a later rule reading an attribute
the record lacks raised there while the fast form returned the hit (found by the
fast-vs-reference property test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cx_pipelines.engine import load_strategy
from cx_pipelines.engine.evaluation.record.run import CustomerState
from cx_pipelines.engine.language.errors import EvaluationError

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "seed004_bank.yaml"


HIGH_PROFIT = '      - {id: high_profit, when: [">= 1000", "-"], then: high_profit}\n'


def forms(tmp_path: Path, record: dict):
    text = FIXTURE.read_text()
    assert HIGH_PROFIT in text
    # a rule after the first whose first cell reads risk_score, for every profit
    path = tmp_path / "table.yaml"
    path.write_text(
        text.replace(
            HIGH_PROFIT,
            HIGH_PROFIT
            + '      - {id: negative, when: ["-", "< 0"], then: low_profit_high_risk}\n',
        )
    )
    strategy = load_strategy(path)
    table = strategy.mechanisms["profile_table"]  # inputs: profit, risk_score; first hit
    customer = {"customer_id": "c1", "delinquencies": 0.0, "income": 5e4, "age": 40.0}
    state = CustomerState(strategy, {**customer, "region": "north", **record}, [])
    state.values.pop("risk_score", None)  # the record lacks the second input entirely
    return table, state


@pytest.mark.parametrize("form", ["reference", "fast"])
def test_the_first_hit_wins_without_evaluating_later_rules(tmp_path, form):
    table, state = forms(tmp_path, {"profit": 3000.0})
    run = table.evaluate_record if form == "reference" else table.fast_record()
    step: dict = {}
    assert run(state, state.values, step, []) == "high_profit"
    assert step == {"rule": "high_profit"}


@pytest.mark.parametrize("form", ["reference", "fast"])
def test_a_rule_reached_that_reads_a_missing_attribute_is_the_same_error(tmp_path, form):
    table, state = forms(tmp_path, {"profit": 200.0})
    run = table.evaluate_record if form == "reference" else table.fast_record()
    with pytest.raises(EvaluationError) as raised:
        run(state, state.values, {}, [])
    assert raised.value.message == (
        "the record has no attribute 'risk_score' (expression '(risk_score) < 0')"
    )
