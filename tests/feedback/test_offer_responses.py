"""The offer_responses source table: created empty by `cx generate`, ingested with quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from decision_logs import decisions, results_for, write_export

from cx_pipelines import source_schema, warehouse
from cx_pipelines.feedback import process_results
from cx_pipelines.feedback.processing import QUARANTINE_TABLE, RESULTS_TABLE
from cx_pipelines.ingestion import CONTRACTS, ingest_table, quarantined_for
from cx_pipelines.ingestion.expectations import rule_names


def test_the_contract_covers_the_table_and_checks_revenue_against_the_outcome() -> None:
    contract = CONTRACTS["offer_responses"]
    assert contract.columns == [c.name for c in source_schema.offer_responses.columns]
    assert contract.key == source_schema.PRIMARY_KEYS["offer_responses"] == "contact_id"
    names = rule_names("offer_responses")
    assert names[-1] == "revenue_zero_unless_responded"
    assert {"outcome_in_domain", "revenue_in_range", "responded_at_is_timestamp"} <= set(names)


def test_a_generated_world_has_an_empty_offer_responses_table(cx_home: Path) -> None:
    from cx_pipelines.world import generate_world

    url = f"sqlite:///{cx_home / 'source.db'}"
    generate_world(customers=100, seed=3, source_url=url)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("SELECT count(*) FROM offer_responses")).scalar()
    columns = {c["name"] for c in sa.inspect(engine).get_columns("offer_responses")}
    engine.dispose()
    assert count == 0
    assert columns == set(source_schema.offer_responses.columns.keys())
    report = ingest_table("offer_responses", url=url, run_id="world")
    assert (report.rows_read, report.rows_quarantined) == (0, 0)


def _write(url: str, rows: list[dict]) -> None:
    """Insert raw rows into an offer_responses table without key constraints (as an extract)."""
    loose = sa.Table(
        "offer_responses",
        sa.MetaData(),
        *(sa.Column(c.name, c.type) for c in source_schema.offer_responses.columns),
    )
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        loose.create(connection)
        raw = sa.table("offer_responses", *(sa.column(c.name) for c in loose.columns))
        connection.execute(sa.insert(raw), rows)
    engine.dispose()


def test_bad_rows_of_offer_responses_are_quarantined_one_by_one(cx_home: Path) -> None:
    decided = decisions(6, seed=4)
    write_export(cx_home, decided)
    rows = results_for(decided, responded=pd.Series([True, False] * 3).to_numpy())
    rows["responded_at"] = rows["responded_at"].astype(str)
    records = rows.to_dict(orient="records")
    records[1]["revenue"] = 12.0  # not responded, but revenue
    records[2]["outcome"] = "perhaps"
    records.append(dict(records[3]))  # a key twice: the source cannot say which copy is right
    url = f"sqlite:///{cx_home / 'source.db'}"
    _write(url, records)

    report = ingest_table("offer_responses", url=url, run_id="ingest")

    assert (report.rows_read, report.rows_accepted, report.rows_quarantined) == (7, 3, 4)
    assert report.failures_by_rule == {
        "contact_id_is_unique": 2,
        "outcome_in_domain": 1,
        "revenue_zero_unless_responded": 1,
    }
    assert len(quarantined_for("offer_responses")) == 4

    run = process_results(run_id="match")  # the accepted rows feed interaction_results
    assert run.update.inputs[0].source == "offer_responses"
    assert run.update.total("matched") == 3
    assert len(warehouse.read_table(RESULTS_TABLE)) == 3
    assert len(warehouse.read_table(QUARANTINE_TABLE)) == 0
    again = process_results(run_id="match-again")
    assert (again.update.total("matched"), again.update.total("duplicates")) == (0, 3)
