"""Contracts against the source schema and the synthetic world; settings and URL masking."""

from __future__ import annotations

import pytest

from cx_pipelines import source_schema
from cx_pipelines.ingestion import (
    CONTRACTS,
    InvalidThresholdError,
    ingest_table,
    mask_url,
    quarantine_threshold,
)
from cx_pipelines.ingestion.expectations import rule_names


@pytest.mark.parametrize("table", source_schema.SOURCE_TABLES, ids=lambda table: table.name)
def test_contract_covers_exactly_the_source_columns(table):
    contract = CONTRACTS[table.name]
    assert contract.columns == [column.name for column in table.columns]
    assert contract.key == source_schema.PRIMARY_KEYS[table.name]
    names = rule_names(table.name)
    assert len(names) == len(set(names))
    assert f"{contract.key}_is_unique" in names and f"{contract.key}_not_null" in names


def test_categorical_domains_are_the_source_schema_domains():
    assert (
        CONTRACTS["transactions"].field("merchant_category").domain
        == source_schema.MERCHANT_CATEGORIES
    )
    assert (
        CONTRACTS["interactions"].field("interaction_type").domain
        == source_schema.INTERACTION_TYPES
    )
    assert CONTRACTS["offer_history"].field("channel").domain == source_schema.OFFER_CHANNELS


def test_type_rules_come_before_presence_and_value_rules():
    names = rule_names("transactions")
    assert names.index("amount_is_numeric") < names.index("amount_not_null")
    assert names.index("amount_not_null") < names.index("amount_in_range")
    assert names.index("amount_in_range") < names.index("account_id_exists")
    assert names[-1] == "customer_id_matches_account"


def test_a_generated_world_passes_every_rule(cx_home):
    from cx_pipelines.world import generate_world

    url = f"sqlite:///{cx_home / 'source.db'}"
    summary = generate_world(customers=300, seed=11, source_url=url)

    for table in source_schema.SOURCE_TABLES:
        report = ingest_table(table.name, url=url, run_id="world")
        assert report.rows_read == summary.row_counts[table.name]
        assert report.failures_by_rule == {}, table.name


def test_threshold_defaults_to_five_percent_and_reads_the_environment(monkeypatch):
    monkeypatch.delenv("CX_QUARANTINE_THRESHOLD", raising=False)
    assert quarantine_threshold() == 0.05
    monkeypatch.setenv("CX_QUARANTINE_THRESHOLD", "0.2")
    assert quarantine_threshold() == 0.2
    assert quarantine_threshold(0.01) == 0.01  # explicit configuration wins
    monkeypatch.setenv("CX_QUARANTINE_THRESHOLD", "five")
    with pytest.raises(InvalidThresholdError, match="CX_QUARANTINE_THRESHOLD='five'"):
        quarantine_threshold()
    with pytest.raises(InvalidThresholdError, match="between 0 and 1"):
        quarantine_threshold(5.0)


def test_urls_are_masked_in_messages():
    assert (
        mask_url("postgresql+psycopg2://cx:s3cret@db:5432/cx")
        == "postgresql+psycopg2://cx:***@db:5432/cx"
    )
    assert mask_url("sqlite:////tmp/source.db") == "sqlite:////tmp/source.db"
