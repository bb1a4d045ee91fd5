"""Decisioning assets on small hand-made warehouse tables, through real Dagster runs."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from cx_pipelines import warehouse
from cx_pipelines.defs.decisioning import defs as decisioning_defs
from cx_pipelines.defs.decisioning.assets import (
    StrategyRepository,
    every_customer_is_decided,
    periodic_review_decisions,
    strategies_pass_validation_and_golden_cases,
    strategy_catalog,
)
from cx_pipelines.defs.warehouse_io import WarehouseIOManager
from cx_pipelines.engine import load_strategy

ROOT = Path(__file__).resolve().parents[2]
STRATEGIES = ROOT / "strategies"


def write_population() -> None:
    """Four customers in source-schema shape; customer 1 reproduces seed 004 FIG. 14."""
    as_of = dt.date(2026, 9, 30)
    warehouse.write_table(
        "customers",
        pd.DataFrame(
            {
                "customer_id": np.array([1, 2, 3, 4], dtype=np.int64),
                "customer_type": ["mass_market", "affluent", "student", "small_business"],
                "region": ["north", "south", "east", "west"],
                "birth_year": [1975, 1968, 2003, 1980],
                "annual_income": [50000.0, 120000.0, 20000.0, 60000.0],
                "joined_on": [
                    as_of - dt.timedelta(days=2500),
                    as_of - dt.timedelta(days=3100),
                    as_of - dt.timedelta(days=200),
                    as_of - dt.timedelta(days=900),
                ],
                "email": ["a@x.org", "b@x.org", "c@x.org", "d@x.org"],
            }
        ),
    )
    rows = [
        (11, 1, "credit_card", "open", 300.0, 500.0, 0),
        (12, 1, "credit_card", "open", 400.0, 700.0, 0),
        (13, 1, "personal_loan", "open", 5000.0, None, 45),
        (14, 1, "credit_card", "closed", 100.0, 900.0, 0),  # closed: not decided
        (21, 2, "checking", "open", 10000.0, None, 0),
        (22, 2, "savings", "open", 50000.0, None, 0),
        (31, 3, "credit_card", "open", 300.0, 400.0, 35),
        (32, 3, "mortgage", "open", 80000.0, None, 0),
    ]
    warehouse.write_table(
        "accounts",
        pd.DataFrame(
            rows,
            columns=[
                "account_id",
                "customer_id",
                "product_type",
                "status",
                "balance",
                "credit_limit",
                "days_past_due",
            ],
        ).assign(opened_on=dt.date(2020, 1, 1), interest_rate=0.1),
    )


def run(folder: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [
            strategy_catalog,
            periodic_review_decisions,
            strategies_pass_validation_and_golden_cases,
            every_customer_is_decided,
        ],
        resources={
            "io_manager": WarehouseIOManager(),
            "strategies": StrategyRepository(directory=str(folder)),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@pytest.fixture
def strategies(tmp_path: Path) -> Path:
    folder = tmp_path / "strategies"
    folder.mkdir()
    for path in STRATEGIES.glob("*.yaml"):
        shutil.copy(path, folder / path.name)
    return folder


def test_decisions_materialise_for_the_whole_population(cx_home, strategies):
    write_population()
    result = run(strategies)
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert checks == {
        "strategies_pass_validation_and_golden_cases": True,
        "every_customer_is_decided": True,
    }

    catalog = warehouse.read_table("strategy_catalog")
    retail = load_strategy(strategies / "retail_bank.yaml")
    row = catalog.set_index("file").loc["retail_bank.yaml"]
    assert row["valid"] and row["content_hash"] == retail.content_hash and row["golden_cases"] == 10

    customers = warehouse.read_table("customer_decisions").set_index("customer_id")
    assert customers.index.tolist() == [1, 2, 3, 4]  # integer ids, as in the warehouse
    assert set(customers["event"]) == {"periodic_review"}
    assert set(customers["strategy_hash"]) == {retail.content_hash}
    assert customers.loc[2, "segment"] == "premier" and customers.loc[2, "category"] == "platinum"
    assert customers.loc[4, "segment"] == "business"
    assert customers.loc[1, "risk_score"] == 480
    assert customers["test_group"].notna().all()

    accounts = warehouse.read_table("account_decisions").set_index("account_id")
    assert 14 not in accounts.index  # closed accounts are not decided
    assert accounts.loc[11, "credit_card.increase_amount"] == 400  # FIG. 14
    assert accounts.loc[12, "credit_card.increase_amount"] == 500
    assert accounts.loc[31, "credit_card.treatment"] == "D1"  # FIG. 9
    assert accounts.loc[32, "mortgage.treatment"] == "D5"  # FIG. 10
    assert accounts.loc[22, "action"] == "no_minimum_balance"  # FIG. 8, Platinum
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert {"strategy_catalog", "customer_decisions", "account_decisions"} <= materialized


def test_optional_scores_reach_the_engine_inputs(cx_home, strategies):
    from cx_pipelines.decisioning.simulate import engine_inputs, model_versions

    write_population()
    scores = pd.DataFrame(
        {
            "customer_id": np.array([1, 2], dtype=np.int64),
            "propensity__credit_card__email": [0.3, 0.01],
            "propensity_model_version": "cx_propensity/4",
        }
    )
    assert model_versions(scores) == {"cx_propensity": "4"}
    retail = load_strategy(strategies / "retail_bank.yaml")
    customers, accounts = engine_inputs(
        retail,
        customers=warehouse.read_table("customers"),
        accounts=warehouse.read_table("accounts"),
        tables={
            "customer_scores": scores,
            "customer_kpis": pd.DataFrame(
                {"customer_id": np.array([3, 1], dtype=np.int64), "recency_days": [12.0, 40.0]}
            ),
        },
    )
    recency = customers["recency_days"]
    assert recency.iloc[0] == 40.0 and np.isnan(recency.iloc[1]) and recency.iloc[2] == 12.0
    assert customers["scores.propensity__credit_card__email"].tolist()[:2] == [0.3, 0.01]
    assert np.isnan(customers["scores.propensity__credit_card__email"].tolist()[2])
    assert customers.loc[0, "tenure_months"] == 82 and customers.loc[0, "age"] == 51
    assert set(accounts["account_type"]) == {
        "credit_card",
        "personal_loan",
        "checking",
        "savings",
        "mortgage",
    }


def test_a_broken_strategy_blocks_decisions(cx_home, strategies):
    write_population()
    text = (strategies / "retail_bank.yaml").read_text()
    (strategies / "retail_bank.yaml").write_text(
        text.replace("credit_card.increase_amount: 500", "credit_card.increase_amount: 550", 1)
    )
    result = run(strategies)
    assert not result.success
    check = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "strategies_pass_validation_and_golden_cases"
    )
    assert not check.passed
    assert "550" in check.metadata["problems"].value
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "strategy_catalog" in materialized
    assert not {"customer_decisions", "account_decisions"} & materialized
    assert not warehouse.table_exists("customer_decisions")


def test_an_invalid_file_in_the_repository_blocks_decisions(cx_home, strategies):
    write_population()
    (strategies / "draft.yaml").write_text(
        "strategy: draft\nversion: 1\nsegments: [{name: all}]\nmechanisms: {m: {type: nonsense}}\n"
    )
    result = run(strategies)
    assert not result.success
    catalog = warehouse.read_table("strategy_catalog").set_index("file")
    assert not catalog.loc["draft.yaml", "valid"]
    assert "draft.yaml:" in catalog.loc["draft.yaml", "errors"]
    assert not warehouse.table_exists("account_decisions")


def test_definitions_describe_every_decisioning_asset():
    for spec in decisioning_defs.resolve_all_asset_specs():
        if spec.key.path[-1] in {
            "customers",
            "accounts",
            "customer_kpis",
            "customer_segments",
            "customer_scores",
        }:
            continue
        assert spec.description and spec.group_name == "decisioning" and spec.kinds


def test_monthly_periodic_review_decides_the_population():
    job = decisioning_defs.resolve_job_def("periodic_review")
    keys = {key.to_user_string() for key in job.asset_layer.executable_asset_keys}
    assert {"strategy_catalog", "customer_decisions", "account_decisions"} <= keys
    schedule = decisioning_defs.resolve_schedule_def("monthly_periodic_review")
    assert schedule.cron_schedule == "0 3 1 * *" and schedule.job_name == "periodic_review"


def test_a_strategy_edited_after_validation_is_refused(cx_home, strategies):
    write_population()
    first = dg.materialize(
        [strategy_catalog, strategies_pass_validation_and_golden_cases],
        resources={
            "strategies": StrategyRepository(directory=str(strategies)),
            "io_manager": WarehouseIOManager(),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert first.success
    path = strategies / "retail_bank.yaml"
    path.write_text(path.read_text().replace("then: D5", "then: D6", 1))
    second = dg.materialize(
        [strategy_catalog, periodic_review_decisions],
        selection=[dg.AssetKey("customer_decisions"), dg.AssetKey("account_decisions")],
        resources={
            "strategies": StrategyRepository(directory=str(strategies)),
            "io_manager": WarehouseIOManager(),
        },
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not second.success
    failure = next(e for e in second.all_events if e.is_step_failure)
    assert "changed since strategy_catalog validated it" in str(failure.event_specific_data.error)
    assert not warehouse.table_exists("customer_decisions")


def test_duplicate_customers_are_refused_with_the_table_named(cx_home, strategies):
    from cx_pipelines.decisioning.simulate import PopulationError, engine_inputs

    write_population()
    customers = warehouse.read_table("customers")
    retail = load_strategy(strategies / "retail_bank.yaml")
    with pytest.raises(PopulationError, match="table 'customer_kpis' has duplicate entries"):
        engine_inputs(
            retail,
            customers=customers,
            accounts=warehouse.read_table("accounts"),
            tables={"customer_kpis": pd.DataFrame({"customer_id": [1, 1], "recency_days": [1, 2]})},
        )
    with pytest.raises(PopulationError, match="table 'customers' has duplicate entries"):
        engine_inputs(
            retail,
            customers=pd.concat([customers, customers.head(1)]),
            accounts=warehouse.read_table("accounts"),
        )
