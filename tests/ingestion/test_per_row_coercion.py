"""One bad value quarantines its own row only, for every column kind and null pattern,
whichever database delivered it (SQLite's loose columns, PostgreSQL typed or all-text)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from ingestion_rows import valid_rows, write_source

from cx_pipelines import source_schema, warehouse
from cx_pipelines.ingestion import CONTRACTS, ingest_table

TABLES = [table.name for table in source_schema.SOURCE_TABLES]

# Values each store can hold in a column of the kind; the outcome is "type" (the column's
# type rule), "domain" (its value rule) or "accepted".
ANY_STORE_BAD = {
    "id": ["x", "12,5", "1.5", ""],
    "integer": ["x", "12,5", "1.5", ""],
    "number": ["lots", "12,50", ""],
    "date": ["31/12/2020", "2025-13-01", "10000-01-01", "yesterday"],
    "timestamp": ["31/12/2020 10:00", "2025-02-30 10:00:00", "10000-01-01 00:00:00", "now"],
    "boolean": ["maybe", "2", ""],
}
SQLITE_ONLY_BAD = {
    "id": [1.5, 9.3e18, float("inf"), b"\x01"],
    "integer": [1.5, 9.3e18, float("inf"), b"\x01"],
    "number": [b"1"],
    "date": [20250101, 3.5],
    "timestamp": [20250101, 3.5],
    "boolean": [2, 0.5, b"1"],
}
POSTGRES_TYPED_BAD = {
    "date": ["10000-01-01", "0044-03-15 BC", "infinity", "-infinity"],
    "timestamp": ["10000-01-01 00:00:00", "0044-03-15 10:00:00 BC", "infinity"],
}


@dataclass(frozen=True)
class Case:
    table: str
    column: str
    value: object
    rule: str | None  # None: the row is accepted
    key: int


def _rule(table: str, column: str, outcome: str) -> str | None:
    field = CONTRACTS[table].field(column)
    if outcome == "null":
        return f"{column}_not_null" if field.required else None
    if outcome == "type":
        return field.type_rule
    if outcome == "accepted":
        return None
    return f"{column}_in_domain" if field.domain else f"{column}_is_well_formed"


def cases_for(store: str) -> list[Case]:
    """One row per (column, bad value), each built from a valid row with a key of its own."""
    cases: list[Case] = []
    key = 10_000
    for table in TABLES:
        for field in CONTRACTS[table].fields:
            values: list[tuple[object, str]] = [(None, "null")]
            if store in ("sqlite", "postgres_text"):
                values += [(value, "type") for value in ANY_STORE_BAD.get(field.kind, [])]
            if store == "sqlite":
                values += [(value, "type") for value in SQLITE_ONLY_BAD.get(field.kind, [])]
                if field.kind == "category":
                    good = field.domain[0].encode()
                    values += [(42, "domain"), (b"\xff" + good, "domain"), (good, "accepted")]
            if store == "postgres_typed":
                values += [(value, "type") for value in POSTGRES_TYPED_BAD.get(field.kind, [])]
                if field.kind == "number":
                    # NaN is a null; infinity is a number out of every range.
                    values += [("NaN", "null"), ("Infinity", "range")]
            for value, outcome in values:
                key += 1
                rule = f"{field.name}_in_range" if outcome == "range" else None
                rule = rule or _rule(table, field.name, outcome)
                cases.append(Case(table, field.name, value, rule, key))
    return cases


def rows_with(cases: list[Case]) -> dict[str, list[dict]]:
    rows = valid_rows()
    templates = {table: dict(table_rows[0]) for table, table_rows in rows.items()}
    for case in cases:
        key_column = source_schema.PRIMARY_KEYS[case.table]
        row = {**templates[case.table], key_column: case.key, case.column: case.value}
        rows[case.table].append(row)
    return rows


def assert_each_bad_value_quarantines_its_own_row(
    url: str, cases: list[Case], *, chunk_rows: int
) -> None:
    rows = valid_rows()
    for table in TABLES:
        ingest_table(table, url=url, run_id="per-row", chunk_rows=chunk_rows)
    quarantined = warehouse.read_table("quarantined_rows")
    outcome = Counter(zip(quarantined["source_table"], quarantined["failed_rule"], strict=True))
    expected = Counter((case.table, case.rule) for case in cases if case.rule is not None)
    assert outcome == expected
    for table in TABLES:
        key = source_schema.PRIMARY_KEYS[table]
        accepted = set(warehouse.read_table(table)[key].tolist())
        good = {row[key] for row in rows[table]}
        assert good <= accepted, f"{table}: valid rows {sorted(good - accepted)} lost"
        expected_accepted = {
            case.key
            for case in cases
            if case.table == table and case.rule is None and case.column != key
        }
        assert accepted - good == expected_accepted, table


def text_metadata() -> sa.MetaData:
    """The source tables with every column TEXT, as a flat-file extract lands."""
    metadata = sa.MetaData()
    for table in source_schema.SOURCE_TABLES:
        sa.Table(table.name, metadata, *(sa.Column(c.name, sa.Text) for c in table.columns))
    return metadata


def write_text_source(url: str, rows: dict[str, list[dict]]) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for table in text_metadata().sorted_tables:
                table.drop(connection, checkfirst=True)
                table.create(connection)
                names = [column.name for column in table.columns]
                records = [
                    {c: None if row.get(c) is None else str(row[c]) for c in names}
                    for row in rows[table.name]
                ]
                connection.execute(sa.insert(table), records)
    finally:
        engine.dispose()


def test_one_null_in_a_boolean_column_quarantines_only_its_own_row(sqlite_url):
    """The issue's case: one ``treated`` NULL once sent every good offer to quarantine."""
    rows = valid_rows()
    rows["offer_history"].append({**rows["offer_history"][0], "contact_id": 999, "treated": None})
    write_source(sqlite_url, rows, tables=["customers", "offer_history"])
    ingest_table("customers", url=sqlite_url, run_id="run")

    report = ingest_table("offer_history", url=sqlite_url, run_id="run")

    assert report.failures_by_rule == {"treated_not_null": 1}
    assert report.rows_accepted == len(rows["offer_history"]) - 1
    assert warehouse.read_table("offer_history")["treated"].tolist() == [True, False, True]


@pytest.mark.parametrize("chunk_rows", [16, 100_000])
def test_sqlite_every_kind_of_bad_value_quarantines_only_its_row(sqlite_url, chunk_rows):
    cases = cases_for("sqlite")
    write_source(sqlite_url, rows_with(cases))
    assert_each_bad_value_quarantines_its_own_row(sqlite_url, cases, chunk_rows=chunk_rows)


def test_a_64_bit_id_keeps_every_digit_beside_a_null(sqlite_url):
    rows = valid_rows()
    big = 2**62 + 1  # not representable as a float
    rows["customers"].append({**rows["customers"][0], "customer_id": big})
    rows["customers"].append({**rows["customers"][0], "customer_id": None})
    write_source(sqlite_url, rows, tables=["customers"])

    ingest_table("customers", url=sqlite_url, run_id="run")

    assert big in warehouse.read_table("customers")["customer_id"].tolist()


@pytest.mark.postgres
def test_postgres_typed_columns_quarantine_out_of_range_dates_per_row(cx_home, postgres_schema_url):
    cases = cases_for("postgres_typed")
    write_source(postgres_schema_url, rows_with(cases))
    assert_each_bad_value_quarantines_its_own_row(postgres_schema_url, cases, chunk_rows=100_000)


@pytest.mark.postgres
def test_postgres_text_columns_quarantine_each_bad_value_per_row(cx_home, postgres_schema_url):
    cases = cases_for("postgres_text")
    write_text_source(postgres_schema_url, rows_with(cases))
    assert_each_bad_value_quarantines_its_own_row(postgres_schema_url, cases, chunk_rows=100_000)


def test_sqlite_text_columns_read_like_postgres_text_columns(sqlite_url):
    cases = cases_for("postgres_text")
    write_text_source(sqlite_url, rows_with(cases))
    assert_each_bad_value_quarantines_its_own_row(sqlite_url, cases, chunk_rows=100_000)
