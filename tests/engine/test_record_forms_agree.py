"""Property: every mechanism's fast per-record form equals its reference form (the oracle)
on random strategies and random records, errors included."""

from __future__ import annotations

import math

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_strategies import STRINGS, clipped_sum, random_strategy

from cx_pipelines.engine import load_strategy, register_user_exit
from cx_pipelines.engine.evaluation.record.run import CustomerState
from cx_pipelines.engine.evaluation.shared import canonical
from cx_pipelines.engine.language.expressions import ValueType
from cx_pipelines.engine.mechanisms import KINDS

register_user_exit("tests.clipped_sum", clipped_sum)

numbers = st.one_of(st.none(), st.integers(-3, 14).map(float), st.sampled_from([0.5, 2.25, 7.75]))
VALUES = {
    ValueType.NUMBER: numbers,
    ValueType.STRING: st.one_of(st.none(), st.sampled_from([*STRINGS, "p", "q", "none"])),
    ValueType.BOOLEAN: st.one_of(st.none(), st.booleans()),
}
# what breaks an expression: a value of another type, or no value at all
CORRUPTIONS = st.sampled_from([None, None, "missing", "text", "number", "flag"])
WRONG = {"text": "abc", "number": 3.0, "flag": True}
_LOADED: dict[int, object] = {}


def strategy_of(seed: int, folder):
    if seed not in _LOADED:
        path = folder / f"random_{seed}.yaml"
        path.write_text(yaml.safe_dump(random_strategy(seed), sort_keys=False))
        _LOADED[seed] = load_strategy(path)
    return _LOADED[seed]


def outcome(form, mechanism, state, record) -> tuple:
    """What a form does: ("value", canonical value, step, calls) or ("error", type, text)."""
    step: dict = {"mechanism": mechanism.name}
    calls: list[str] = []
    try:  # as the evaluator takes it: the value in its canonical form
        value = canonical(form(state, record, step, calls), mechanism.output.value_type)
    except Exception as error:  # the oracle's own errors are part of what must agree
        return ("error", type(error).__name__, str(error))
    return (
        "value",
        "NaN" if isinstance(value, float) and math.isnan(value) else value,
        step,
        calls,
    )


def test_every_kind_is_exercised_by_the_random_strategies(tmp_path):
    strategy = strategy_of(1, tmp_path)
    assert {m.kind for m in strategy.mechanisms.values()} == set(KINDS)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(seed=st.integers(0, 40), data=st.data(), corruption=CORRUPTIONS)
def test_fast_record_forms_equal_their_reference_forms(tmp_path, seed, data, corruption):
    strategy = strategy_of(seed, tmp_path)
    customer = {"customer_id": "c1"}
    for attribute in strategy.input_attributes(None):
        if attribute.name != "customer_id":
            customer[attribute.column] = data.draw(VALUES[attribute.value_type], attribute.name)
    accounts = []
    for account_type in strategy.account_types:
        for index in range(data.draw(st.integers(0, 3), f"{account_type} accounts")):
            account = {"account_id": f"{account_type}{index}", "account_type": account_type}
            for attribute in strategy.input_attributes(account_type):
                account[attribute.column] = data.draw(VALUES[attribute.value_type], attribute.name)
            accounts.append(account)
    state = CustomerState(strategy, customer, accounts)
    state.model_versions = {"m1": "7"}
    for attribute in strategy.derived_attributes(None):  # as if earlier processes ran
        state.values[attribute.name] = data.draw(VALUES[attribute.value_type], attribute.name)
    for item in state.accounts:
        for attribute in strategy.derived_attributes(item["account_type"]):
            item["values"][attribute.name] = data.draw(VALUES[attribute.value_type])
    if corruption is not None:
        names = sorted(a.name for a in strategy.input_attributes(None) if a.name != "customer_id")
        name = data.draw(st.sampled_from(names), "corrupted attribute")
        if corruption == "missing":
            del state.values[name]
        else:
            state.values[name] = WRONG[corruption]
    compared = 0
    for mechanism in strategy.mechanisms.values():
        fast = mechanism.fast_record()
        records = (
            [state.values]
            if mechanism.level is None
            else [item["values"] for item in state.accounts_of(mechanism.level)]
        )
        for record in records:
            expected = outcome(mechanism.evaluate_record, mechanism, state, record)
            assert outcome(fast, mechanism, state, record) == expected, mechanism.name
            compared += 1
    assert compared >= len([m for m in strategy.mechanisms.values() if m.level is None])
