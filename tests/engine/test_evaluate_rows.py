"""``evaluate_rows``: rows given as arrays, accounts and contacts matched by position.

Property: on random strategies, with customers that appear in several rows (each with
its own inputs, accounts and contacts), every row's record and trace equal the
per-record evaluator's for that row's inputs, and ``ranked_records`` equals the chosen
part of ``records``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_strategies import (
    TREATMENTS,
    account_rows,
    clipped_sum,
    contact_rows,
    customer_rows,
    random_strategy,
)

from cx_pipelines.engine import evaluate_customer, evaluate_rows, load_strategy, register_user_exit
from cx_pipelines.engine.evaluation.shared import trace_json
from cx_pipelines.engine.language.errors import EvaluationError

register_user_exit("tests.clipped_sum", clipped_sum)

history_rows = contact_rows(st.integers(0, 90).map(float))
people = st.lists(
    st.tuples(
        st.integers(0, 3),  # customer id: a few ids, so rows repeat customers
        customer_rows,
        st.lists(account_rows, max_size=3),
        st.lists(history_rows, max_size=4),
    ),
    min_size=1,
    max_size=10,
)


def _column(values: list, number: bool) -> np.ndarray:
    if number:
        return np.array(values, dtype=np.float64)
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column


def _columns(rows: list[dict], numbers: set[str]) -> dict[str, np.ndarray]:
    names = list(dict.fromkeys(key for row in rows for key in row))
    return {name: _column([row.get(name) for row in rows], name in numbers) for name in names}


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)


def _inputs(rows):
    customers, accounts, account_owner, contacts, contact_owner = [], [], [], [], []
    for position, (number, customer, owned, history) in enumerate(rows):
        customer_id = f"K{number}"
        customers.append({"customer_id": customer_id, **customer})
        for k, account in enumerate(owned):
            accounts.append(
                {
                    "account_id": f"K{number}-{position}-{k}",
                    "customer_id": customer_id,
                    "account_type": "acc",
                    **account,
                }
            )
            account_owner.append(position)
        for item in history:
            contacts.append({"customer_id": customer_id, **item})
            contact_owner.append(position)
    return customers, accounts, account_owner, contacts, contact_owner


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), rows=people, channel=st.sampled_from([None, "sms"]))
def test_rows_by_position_give_the_per_record_records_and_traces(
    tmp_path_factory, seed, rows, channel
):
    path = tmp_path_factory.mktemp("random") / "strategy.yaml"
    path.write_text(yaml.safe_dump(random_strategy(seed), sort_keys=False))
    strategy = load_strategy(path)
    customers, accounts, account_owner, contacts, contact_owner = _inputs(rows)
    options = {"event": "review", "channel": channel, "model_versions": {"m1": "7"}}
    result = evaluate_rows(
        strategy,
        customers=_columns(customers, {"x1", "x2"}),
        accounts=_columns(accounts, {"a1", "a2"}) if accounts else None,
        account_rows=np.array(account_owner, dtype=np.int64),
        contact_history=_columns(contacts, {"days_ago"}) if contacts else None,
        contact_rows=np.array(contact_owner, dtype=np.int64),
        **options,
    )
    records = result.records()
    ranked = result.ranked_records()
    assert len(records) == len(ranked) == len(customers)
    for position, customer in enumerate(customers):
        own = [a for a, owner in zip(accounts, account_owner, strict=True) if owner == position]
        history = [h for h, owner in zip(contacts, contact_owner, strict=True) if owner == position]
        single = evaluate_customer(
            strategy, customer=customer, accounts=own, contact_history=history, **options
        )
        # compared as values, not text: the sign of a rounded zero is the subject of
        # test_evaluators_agree (round(-0.001, 2) is -0.0 in batch, 0.0 per record)
        assert json.loads(canonical(records[position])) == json.loads(canonical(single))
        trace = result.customers["trace"].iloc[position]
        assert json.loads(trace) == json.loads(trace_json(single["trace"]))
        expected = {
            channel_name: items[: strategy.max_per_channel]
            for channel_name, items in single["trace"]["arbitration"].items()
        }
        assert ranked[position]["arbitration"] == expected
        for key in ("customer_id", "event", "segment", "test_group", "category", "strategy_hash"):
            assert ranked[position][key] == single[key]


def _small_strategy(tmp_path):
    path = tmp_path / "strategy.yaml"
    path.write_text(yaml.safe_dump(random_strategy(3), sort_keys=False))
    return load_strategy(path)


def test_contact_rows_must_name_rows_of_the_customers(tmp_path):
    strategy = _small_strategy(tmp_path)
    customers = _columns(
        [{"customer_id": "K1", "x1": 1.0, "x2": None, "s1": "a", "b1": True}], {"x1", "x2"}
    )
    history = _columns(
        [{"customer_id": "K1", "channel": "sms", "treatment": TREATMENTS[0], "days_ago": 1.0}],
        {"days_ago"},
    )
    with pytest.raises(EvaluationError, match="contact_rows must name rows"):
        evaluate_rows(
            strategy,
            event="review",
            customers=customers,
            contact_history=history,
            contact_rows=np.array([1]),
        )


def test_a_missing_input_column_is_named_as_in_the_batch(tmp_path):
    strategy = _small_strategy(tmp_path)
    customers = _columns([{"customer_id": "K1", "x2": None, "s1": "a", "b1": True}], {"x2"})
    with pytest.raises(EvaluationError, match="the customers frame has no column 'x1'"):
        evaluate_rows(strategy, event="review", customers=customers)


def test_an_empty_customer_id_is_refused(tmp_path):
    strategy = _small_strategy(tmp_path)
    customers = _columns(
        [{"customer_id": None, "x1": 1.0, "x2": None, "s1": "a", "b1": True}], {"x1", "x2"}
    )
    with pytest.raises(EvaluationError, match="customer_id .* has empty entries"):
        evaluate_rows(strategy, event="review", customers=customers).records()
