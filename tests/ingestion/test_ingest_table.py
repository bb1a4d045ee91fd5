"""Ingestion without Dagster: every bad row quarantined under its rule, nothing lost."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
import pytest
from ingestion_rows import source_with_bad_rows, valid_rows, write_source

from cx_pipelines import source_schema, warehouse
from cx_pipelines.ingestion import (
    CONTRACTS,
    SourceColumnsMissingError,
    SourceTableMissingError,
    SourceUnavailableError,
    ingest_table,
    quarantined_for,
)
from cx_pipelines.ingestion.coercion import empty_frame

TABLES = [table.name for table in source_schema.SOURCE_TABLES]


def ingest_all(url: str, *, run_id: str = "run-1", chunk_rows: int = 8) -> dict:
    return {
        table: ingest_table(table, url=url, run_id=run_id, chunk_rows=chunk_rows)
        for table in TABLES
    }


def _key(value: object) -> str:
    return (
        "<null>" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)
    )


def assert_bad_rows_quarantined(url: str, *, sqlite: bool) -> None:
    rows, cases = source_with_bad_rows(sqlite=sqlite)
    write_source(url, rows)

    reports = ingest_all(url)

    quarantined = warehouse.read_table("quarantined_rows")
    expected = Counter(
        (case.table, _key(case.row[source_schema.PRIMARY_KEYS[case.table]]), case.rule)
        for case in cases
    )
    actual = Counter(
        zip(
            quarantined["source_table"],
            quarantined["source_key"].map(_key),
            quarantined["failed_rule"],
            strict=True,
        )
    )
    assert actual == expected
    bad_keys = {
        (case.table, _key(case.row[source_schema.PRIMARY_KEYS[case.table]])) for case in cases
    }
    for table in TABLES:
        report = reports[table]
        key = source_schema.PRIMARY_KEYS[table]
        assert report.rows_read == len(rows[table])
        assert report.rows_read == report.rows_accepted + report.rows_quarantined
        accepted = warehouse.read_table(table)
        assert len(accepted) == report.rows_accepted
        good_keys = sorted(
            int(row[key]) for row in rows[table] if (table, _key(row[key])) not in bad_keys
        )
        assert sorted(accepted[key].tolist()) == good_keys
        assert report.failures_by_rule == dict(
            Counter(case.rule for case in cases if case.table == table)
        )


def test_every_injected_bad_row_is_quarantined_under_its_rule_and_none_lost(sqlite_url):
    assert_bad_rows_quarantined(sqlite_url, sqlite=True)


@pytest.mark.postgres
def test_postgres_source_quarantines_the_same_rows(cx_home, postgres_schema_url):
    assert_bad_rows_quarantined(postgres_schema_url, sqlite=False)


def test_accepted_tables_have_warehouse_dtypes_and_source_values(sqlite_url):
    rows = valid_rows()
    write_source(sqlite_url, rows)
    ingest_all(sqlite_url, chunk_rows=4)

    for table in TABLES:
        frame = warehouse.read_table(table)
        assert frame.dtypes.to_dict() == empty_frame(CONTRACTS[table]).dtypes.to_dict(), table
    transactions = warehouse.read_table("transactions").sort_values("transaction_id")
    assert transactions["amount"].tolist() == [row["amount"] for row in rows["transactions"]]
    assert transactions["occurred_at"].iloc[0] == pd.Timestamp(
        rows["transactions"][0]["occurred_at"]
    )
    offers = warehouse.read_table("offer_history").sort_values("contact_id")
    assert offers["treated"].tolist() == [row["treated"] for row in rows["offer_history"]]
    assert offers["revenue"].isna().tolist() == [
        row["revenue"] is None for row in rows["offer_history"]
    ]
    events = warehouse.read_table("inbound_events").sort_values("event_id")
    assert events["account_id"].isna().tolist() == [
        r["account_id"] is None for r in rows["inbound_events"]
    ]
    assert str(events["account_id"].dtype) == "Int64"


def test_quarantined_row_keeps_the_raw_source_values_as_json(sqlite_url, monkeypatch):
    monkeypatch.delenv("CX_SHOW_PERSONAL_DATA", raising=False)
    rows = valid_rows()
    bad = {**rows["customers"][0], "customer_id": 77, "annual_income": "lots", "email": "x\x01@y.z"}
    rows["customers"].append(bad)
    write_source(sqlite_url, rows, tables=["customers"])

    ingest_table("customers", url=sqlite_url, run_id="run-raw")

    record = quarantined_for("customers").iloc[0]
    assert record["failed_rule"] == "annual_income_is_numeric"  # type rules come first
    assert record["run_id"] == "run-raw"
    personal = {"email", "birth_year", "annual_income"}
    raw = json.loads(record["raw_row"])
    assert {key: value for key, value in raw.items() if key not in personal} == {
        key: value for key, value in bad.items() if key not in personal
    }
    assert {raw[key] for key in personal} == {"***"}  # the source keeps the values


def test_quarantine_json_keeps_personal_values_only_when_allowed(sqlite_url, monkeypatch):
    monkeypatch.setenv("CX_SHOW_PERSONAL_DATA", "1")
    rows = valid_rows()
    bad = {**rows["customers"][0], "customer_id": 77, "annual_income": "lots"}
    rows["customers"].append(bad)
    write_source(sqlite_url, rows, tables=["customers"])

    ingest_table("customers", url=sqlite_url, run_id="run-raw")

    assert json.loads(quarantined_for("customers").iloc[0]["raw_row"]) == bad


def test_rerun_replaces_a_tables_quarantined_rows_instead_of_adding_to_them(sqlite_url):
    rows = valid_rows()
    rows["customers"].append({**rows["customers"][0], "customer_id": 90, "region": "mars"})
    rows["customers"].append({**rows["customers"][0], "customer_id": 91, "region": "moon"})
    rows["accounts"].append({**rows["accounts"][0], "account_id": 99, "status": "lost"})
    write_source(sqlite_url, rows)
    ingest_table("customers", url=sqlite_url, run_id="first")
    ingest_table("accounts", url=sqlite_url, run_id="first")

    ingest_table("customers", url=sqlite_url, run_id="second")
    quarantined = warehouse.read_table("quarantined_rows")
    assert sorted(zip(quarantined["source_table"], quarantined["run_id"], strict=True)) == [
        ("accounts", "first"),
        ("customers", "second"),
        ("customers", "second"),
    ]

    rows["customers"][-1]["region"] = "west"  # the source fixes one row
    write_source(sqlite_url, rows, tables=["customers"])
    report = ingest_table("customers", url=sqlite_url, run_id="third")
    quarantined = warehouse.read_table("quarantined_rows")
    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (6, 5, 1)
    assert sorted(quarantined["source_key"]) == ["90", "99"]


def test_missing_table_names_the_table_and_the_url(sqlite_url):
    write_source(sqlite_url, valid_rows(), tables=["customers"])
    with pytest.raises(SourceTableMissingError) as raised:
        ingest_table("accounts", url=sqlite_url, run_id="run")
    assert str(raised.value).startswith(f"Source table 'accounts' not found in {sqlite_url}")
    assert not warehouse.table_exists("accounts")


def test_missing_column_names_the_table_and_the_column(sqlite_url):
    import sqlalchemy as sa

    engine = sa.create_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE customers (customer_id INTEGER, region TEXT)"))
    engine.dispose()
    with pytest.raises(SourceColumnsMissingError, match="Source table 'customers' in .* 'email'"):
        ingest_table("customers", url=sqlite_url, run_id="run")


def test_absent_sqlite_file_is_reported_not_created(cx_home, sqlite_url):
    with pytest.raises(SourceUnavailableError, match="Cannot read source table 'customers' from"):
        ingest_table("customers", url=sqlite_url, run_id="run")
    assert not (cx_home / "source.db").exists()


def test_unreachable_server_error_masks_the_password(cx_home):
    url = "postgresql+psycopg2://cx:hunter2@127.0.0.1:1/cx"
    with pytest.raises(SourceUnavailableError) as raised:
        ingest_table("customers", url=url, run_id="run")
    message = str(raised.value)
    assert "'customers'" in message and "127.0.0.1:1" in message
    assert "hunter2" not in message and "***" in message


def test_chunk_size_does_not_change_the_outcome(sqlite_url):
    rows, _ = source_with_bad_rows(sqlite=True)
    write_source(sqlite_url, rows)
    outcomes = []
    for chunk_rows in (5, 10_000):
        reports = ingest_all(sqlite_url, chunk_rows=chunk_rows)
        quarantine = warehouse.read_table("quarantined_rows")
        outcomes.append(
            (
                {table: report.failures_by_rule for table, report in reports.items()},
                sorted(
                    zip(quarantine["source_key"].fillna(""), quarantine["failed_rule"], strict=True)
                ),
                {table: sorted(warehouse.read_table(table).iloc[:, 0]) for table in TABLES},
            )
        )
    assert outcomes[0] == outcomes[1]


def test_command_line_runner_prints_figures_as_its_last_line(sqlite_url, capsys):
    from cx_pipelines.ingestion.__main__ import main

    rows = valid_rows()
    rows["customers"].append({**rows["customers"][0], "customer_id": 55, "region": "mars"})
    write_source(sqlite_url, rows, tables=["customers"])

    assert main(["customers"]) == 0  # URL from CX_HOME

    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["tables"]["customers"]["rows_read"] == 5
    assert figures["tables"]["customers"]["rows_quarantined"] == 1


def test_empty_source_table_gives_an_empty_typed_table(sqlite_url):
    write_source(sqlite_url, {"customers": []}, tables=["customers"])

    report = ingest_table("customers", url=sqlite_url, run_id="run")

    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (0, 0, 0)
    assert report.quarantine_rate == 0.0
    frame = warehouse.read_table("customers")
    assert frame.empty
    assert frame.dtypes.to_dict() == empty_frame(CONTRACTS["customers"]).dtypes.to_dict()
