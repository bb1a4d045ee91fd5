"""The source assets through real Dagster: metadata, the quarantine table, the blocking gate."""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest
from ingestion_rows import valid_rows, write_source

from cx_pipelines import warehouse
from cx_pipelines.defs.sources.assets import quarantined_rows, source_assets
from cx_pipelines.defs.sources.checks import quarantine_rate_checks
from cx_pipelines.defs.sources.resources import QuarantinePolicy, SourceDatabase
from cx_pipelines.defs.warehouse_io import WarehouseIOManager
from cx_pipelines.ingestion import SourceTableMissingError


@dg.asset(group_name="test", kinds={"pandas"})
def customer_accounts(customers: pd.DataFrame, accounts: pd.DataFrame) -> pd.DataFrame:
    """Stand-in for a downstream feature asset: accounts with their customer's attributes."""
    return accounts.merge(customers, on="customer_id", how="inner")


def materialize(
    *,
    policy: QuarantinePolicy | None = None,
    selection: list[str] | None = None,
    raise_on_error: bool = False,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [*source_assets, quarantined_rows, customer_accounts, *quarantine_rate_checks],
        selection=selection,
        resources={
            "io_manager": WarehouseIOManager(),
            "source_database": SourceDatabase(),  # URL resolved from CX_HOME at run time
            "quarantine_policy": policy or QuarantinePolicy(),
        },
        raise_on_error=raise_on_error,
    )


def rows_with_one_bad_customer_and_transaction() -> dict[str, list[dict]]:
    rows = valid_rows()
    rows["customers"].append({**rows["customers"][0], "customer_id": 66, "email": "no-at-sign"})
    rows["transactions"].append({**rows["transactions"][0], "transaction_id": 666, "amount": -1.0})
    return rows


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        event.materialization.asset_key.to_user_string(): {
            key: value.value for key, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {event.check_name: event.passed for event in result.get_asset_check_evaluations()}


def test_sources_materialise_with_counts_that_add_up(cx_home):
    rows = rows_with_one_bad_customer_and_transaction()
    write_source(f"sqlite:///{cx_home / 'source.db'}", rows)

    result = materialize(policy=QuarantinePolicy(max_quarantine_rate=0.25))

    assert result.success
    metadata = materialized(result)
    for table, table_rows in rows.items():
        counts = metadata[table]
        assert counts["rows_read"] == len(table_rows)
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"]
        assert (
            counts["dagster/row_count"]
            == counts["rows_accepted"]
            == warehouse.table_row_count(table)
        )
    assert metadata["customers"]["failures_by_rule"] == {"email_is_well_formed": 1}
    assert metadata["transactions"]["failures_by_rule"] == {"amount_in_range": 1}
    assert metadata["customers"]["quarantine_rate"] == pytest.approx(1 / 5)
    assert all(checks(result).values()) and len(checks(result)) == len(source_assets)

    quarantine = warehouse.read_table("quarantined_rows")
    assert sorted(zip(quarantine["source_table"], quarantine["source_key"], strict=True)) == [
        ("customers", "66"),
        ("transactions", "666"),
    ]
    assert set(quarantine["run_id"]) == {result.run_id}
    assert "quarantined_rows" in metadata
    joined = warehouse.read_table("customer_accounts")
    assert len(joined) == len(rows["accounts"])
    assert joined["balance"].dtype == "float64" and joined["customer_id"].dtype == "int64"


def test_quarantine_rate_above_threshold_stops_downstream_assets(cx_home, monkeypatch):
    write_source(f"sqlite:///{cx_home / 'source.db'}", rows_with_one_bad_customer_and_transaction())
    monkeypatch.delenv("CX_QUARANTINE_THRESHOLD", raising=False)

    blocked = materialize()  # default threshold 5 %; 1 of 5 customers is 20 %

    assert not blocked.success
    assert checks(blocked)["customers_quarantine_rate_is_acceptable"] is False
    done = materialized(blocked)
    assert "customers" in done
    assert "accounts" not in done and "customer_accounts" not in done
    assert not warehouse.table_exists("customer_accounts")
    # The failing rows are still there to look at.
    assert warehouse.read_table("quarantined_rows")["source_key"].tolist() == ["66"]

    monkeypatch.setenv("CX_QUARANTINE_THRESHOLD", "0.25")
    allowed = materialize()

    assert allowed.success
    assert "customer_accounts" in materialized(allowed)


def test_missing_source_table_fails_the_run_with_one_clear_error(cx_home):
    url = f"sqlite:///{cx_home / 'source.db'}"
    write_source(url, valid_rows(), tables=["customers"])

    with pytest.raises(SourceTableMissingError) as raised:
        materialize(selection=["customers", "accounts"], raise_on_error=True)

    assert str(raised.value).startswith(f"Source table 'accounts' not found in {url}")


@pytest.mark.postgres
def test_sources_read_postgresql_when_cx_source_url_points_there(
    cx_home, postgres_schema_url, monkeypatch
):
    rows = rows_with_one_bad_customer_and_transaction()
    write_source(postgres_schema_url, rows)
    monkeypatch.setenv("CX_SOURCE_URL", postgres_schema_url)

    result = materialize(policy=QuarantinePolicy(max_quarantine_rate=0.25))

    assert result.success
    metadata = materialized(result)
    assert metadata["customers"]["source"].startswith("postgresql+psycopg2://cx:***@")
    for table, table_rows in rows.items():
        assert metadata[table]["rows_read"] == len(table_rows)
    quarantine = warehouse.read_table("quarantined_rows")
    assert sorted(quarantine["failed_rule"]) == ["amount_in_range", "email_is_well_formed"]
