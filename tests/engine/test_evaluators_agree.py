"""Property: on random strategies and populations, batch and per-record give identical records."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from random_strategies import (
    account_rows,
    clipped_sum,
    contact_rows,
    customer_rows,
    random_strategy,
)

from cx_pipelines.engine import evaluate_batch, evaluate_customer, load_strategy, register_user_exit
from cx_pipelines.engine.evaluation.shared import trace_json

register_user_exit("tests.clipped_sum", clipped_sum)

history_rows = contact_rows(st.integers(0, 90))
population = st.lists(
    st.tuples(
        customer_rows, st.lists(account_rows, max_size=4), st.lists(history_rows, max_size=5)
    ),
    min_size=1,
    max_size=12,
)


def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, default=str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), people=population, channel=st.sampled_from([None, "sms"]))
def test_batch_and_per_record_give_identical_records_and_traces(
    tmp_path_factory, seed, people, channel
):
    path = tmp_path_factory.mktemp("random") / "strategy.yaml"
    path.write_text(yaml.safe_dump(random_strategy(seed), sort_keys=False))
    strategy = load_strategy(path)
    customers, accounts, contacts = [], [], []
    for index, (customer, owned, history) in enumerate(people):
        customer_id = f"K{index}"
        customers.append({"customer_id": customer_id, **customer})
        accounts += [
            {"account_id": f"K{index}-{k}", "customer_id": customer_id, "account_type": "acc", **a}
            for k, a in enumerate(owned)
        ]
        contacts += [{"customer_id": customer_id, **h} for h in history]
    options = {"event": "review", "channel": channel, "model_versions": {"m1": "7"}}
    batch = evaluate_batch(
        strategy,
        customers=pd.DataFrame(customers),
        accounts=pd.DataFrame(accounts) if accounts else None,
        contact_history=pd.DataFrame(contacts) if contacts else None,
        **options,
    )
    batch_records = batch.records()
    assert len(batch_records) == len(customers)
    for position, customer in enumerate(customers):
        own = [a for a in accounts if a["customer_id"] == customer["customer_id"]]
        history = [h for h in contacts if h["customer_id"] == customer["customer_id"]]
        single = evaluate_customer(
            strategy, customer=customer, accounts=own, contact_history=history, **options
        )
        assert canonical(batch_records[position]) == canonical(single)
        assert batch.customers["trace"].iloc[position] == trace_json(single["trace"])
