"""Personal data stays out of previews, metadata, quarantine JSON and the Dagster event log."""

from __future__ import annotations

import json

import dagster as dg
import pandas as pd
import pytest
from dagster._serdes import serialize_value

from cx_pipelines import privacy, warehouse


@pytest.fixture(autouse=True)
def _masked(monkeypatch):
    monkeypatch.delenv(privacy.SHOW_VARIABLE, raising=False)


def event_log_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """Everything the run wrote to the event log (messages, metadata, errors), as text."""
    return "\n".join(serialize_value(record) for record in instance.all_logs(run_id))


def test_personal_columns_are_masked_and_nulls_stay_null():
    frame = pd.DataFrame(
        {
            "customer_id": [1, 2],
            "email": ["ann@example.com", None],
            "birth_year": [1980, 1990],
            "annual_income": [42_000.5, None],
            "work_email": ["a@b.co", "c@d.co"],
        }
    )
    masked = privacy.mask_frame(frame)
    assert masked["customer_id"].tolist() == [1, 2]
    assert masked["email"].tolist()[0] == "***" and pd.isna(masked["email"].tolist()[1])
    assert masked["birth_year"].tolist() == ["***", "***"]
    assert masked["work_email"].tolist() == ["***", "***"]
    assert frame["email"][0] == "ann@example.com"  # the input is not changed


def test_emails_in_free_text_are_masked():
    message = 'invalid input syntax for type bigint: "ann.lee+x@example.co.uk" in row 4'
    assert privacy.mask_text(message) == 'invalid input syntax for type bigint: "***" in row 4'


def test_the_opt_in_shows_personal_values(monkeypatch):
    monkeypatch.setenv(privacy.SHOW_VARIABLE, "1")
    frame = pd.DataFrame({"email": ["ann@example.com"]})
    assert privacy.mask_frame(frame)["email"][0] == "ann@example.com"
    assert privacy.mask_text("ann@example.com") == "ann@example.com"


def test_previews_mask_personal_columns():
    from cx_pipelines.defs.warehouse_io import table_metadata

    frame = pd.DataFrame({"customer_id": [7], "email": ["ann@example.com"], "income": [5e4]})
    preview = table_metadata(frame)["preview"].value
    assert "ann@example.com" not in preview and "50000" not in preview
    assert "***" in preview and "7" in preview


def test_a_quarantined_customer_leaves_no_personal_value_in_the_event_log(cx_home):
    import sys

    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "ingestion"))
    from ingestion_rows import valid_rows, write_source

    from cx_pipelines.defs.sources.assets import quarantined_rows, source_assets
    from cx_pipelines.defs.sources.checks import quarantine_rate_checks
    from cx_pipelines.defs.sources.resources import QuarantinePolicy, SourceDatabase
    from cx_pipelines.defs.warehouse_io import WarehouseIOManager

    rows = valid_rows()
    secret = {"email": "alice.secret@example.org", "annual_income": 123456.78}
    rows["customers"].append(
        {**rows["customers"][0], "customer_id": 66, "birth_year": 1850, **secret}
    )
    write_source(f"sqlite:///{cx_home / 'source.db'}", rows, tables=["customers"])
    instance = dg.DagsterInstance.ephemeral()

    result = dg.materialize(
        [*source_assets, quarantined_rows, *quarantine_rate_checks],
        selection=["customers"],
        instance=instance,
        resources={
            "io_manager": WarehouseIOManager(),
            "source_database": SourceDatabase(),
            "quarantine_policy": QuarantinePolicy(),
        },
        raise_on_error=False,
    )

    assert result.get_asset_check_evaluations()  # the check ran (and showed a sample)
    log = event_log_text(instance, result.run_id)
    assert "birth_year_in_range" in log
    for value in ("alice.secret@example.org", "123456.78", "customer1@example.com", "42000"):
        assert value not in log
    raw = json.loads(warehouse.read_table("quarantined_rows")["raw_row"][0])
    assert raw["email"] == raw["annual_income"] == raw["birth_year"] == "***"
    assert raw["region"] == rows["customers"][0]["region"]


@pytest.mark.slow
def test_no_email_birth_year_or_income_in_the_event_log_of_a_full_run(materialised_world):
    with materialised_world.environment():
        customers = warehouse.read_table("customers").head(10)
        with dg.DagsterInstance.get() as instance:
            log = event_log_text(instance, materialised_world.run_id)
    assert "@example.net" not in log  # every synthetic email is customer<N>@example.net
    for income in customers["annual_income"].dropna():
        assert repr(float(income)) not in log and f"{income:.2f}" not in log
    preview = next(
        record.dagster_event.step_materialization_data.materialization.metadata["preview"].value
        for record in _materializations(materialised_world, "customers")
    )
    header, _, *cells = [line.split("|")[1:-1] for line in preview.splitlines()]
    columns = [name.strip() for name in header]
    for row in cells:
        values = dict(zip(columns, (cell.strip() for cell in row), strict=True))
        assert values["birth_year"] == values["email"] == "***"


def _materializations(world, asset: str):
    with world.environment(), dg.DagsterInstance.get() as instance:
        return [
            record.event_log_entry
            for record in instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
        ]
