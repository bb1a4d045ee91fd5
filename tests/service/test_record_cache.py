"""The service keeps the deployed snapshot's decoded records in memory: a second lookup
does not read the store, an unknown customer is always asked for, and a new snapshot is
read afresh once it is deployed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import support

from cx_pipelines.online_store import open_store, snapshot_records
from cx_pipelines.service.settings import ServiceSettings
from cx_pipelines.service.state import ServiceState


def _snapshot(store, age: float) -> str:
    customers = pd.DataFrame({"customer_id": ["1", "2"], "age": [age, 40.0]})
    accounts = pd.DataFrame({"account_id": [1], "customer_id": ["1"], "account_type": ["savings"]})
    return store.write_snapshot(snapshot_records(customers, accounts), {"model_versions": {}})


def test_records_of_the_deployed_snapshot_come_from_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CX_HOME", str(tmp_path))
    store = open_store(f"sqlite:///{tmp_path / 'online_store.db'}")
    first_generation = _snapshot(store, 30.0)
    settings = dataclasses.replace(
        ServiceSettings.from_environment(), strategy_path=support.STRATEGY
    )
    state = ServiceState(settings, store)
    asked: list[list[str]] = []
    read_many = store.read_many

    def counting(customer_ids):
        asked.append(list(customer_ids))
        return read_many(customer_ids)

    monkeypatch.setattr(store, "read_many", counting)

    found = state.customers(["1", "2", "3"])
    assert asked == [["1", "2", "3"]]
    assert found["1"][0]["customer"]["age"] == 30.0 and found["3"] == (None, None)
    again = state.customers(["2", "1"])
    assert asked == [["1", "2", "3"]]  # both known records came from memory
    assert again["1"] == found["1"] and again["2"] == found["2"]
    assert state.customers(["3", "1"])["3"] == (None, None)
    assert asked[-1] == ["3"]  # unknown customers are asked for every time

    second_generation = _snapshot(store, 31.0)
    assert state.refresh()["snapshot"] == second_generation != first_generation
    record, problem = state.customers(["1"])["1"]
    assert asked[-1] == ["1"]
    assert problem is None
    assert record["generation"] == second_generation and record["customer"]["age"] == 31.0
