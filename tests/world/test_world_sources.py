"""Where the world goes: PostgreSQL as well as SQLite, the `cx` commands, and CDNOW."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest
import sqlalchemy as sa
from world_support import read_source

from cx_pipelines import cli
from cx_pipelines.datasets import read_cdnow
from cx_pipelines.world import generate_world
from cx_pipelines.world.cdnow import load_cdnow


@pytest.fixture
def postgres_schema_url(postgres_url: str):
    """A private schema in the test PostgreSQL database, dropped afterwards."""
    schema = f"world_test_{uuid.uuid4().hex[:8]}"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.engine.make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
    engine.dispose()


@pytest.mark.postgres
def test_postgres_holds_the_same_world_as_sqlite(cx_home, postgres_schema_url: str) -> None:
    sqlite_url = f"sqlite:///{cx_home / 'source.db'}"
    generate_world(customers=1_200, seed=3, source_url=sqlite_url)
    summary = generate_world(customers=1_200, seed=3, source_url=postgres_schema_url)
    expected, actual = read_source(sqlite_url), read_source(postgres_schema_url)
    for name, frame in expected.items():
        assert summary.row_counts[name] == len(frame)
        pd.testing.assert_frame_equal(
            actual[name], frame, check_dtype=False, check_datetimelike_compat=True, obj=name
        )


def test_cx_generate_fills_the_default_source(cx_home, capsys) -> None:
    assert cli.main(["generate", "--customers", "1000", "--seed", "2"]) == 0
    output = capsys.readouterr().out
    assert "1,000 customers, seed 2" in output
    tables = read_source(f"sqlite:///{cx_home / 'source.db'}")
    assert f"transactions: {len(tables['transactions']):,} rows" in output
    assert (cx_home / "world" / "truth.parquet").exists()


def test_load_cdnow_sample_replaces_the_source_tables(cx_home) -> None:
    url = f"sqlite:///{cx_home / 'source.db'}"
    generate_world(customers=1_000, seed=1, source_url=url)
    counts = load_cdnow(master=False, source_url=url)
    assert counts["customers"] == 2_357 and counts["transactions"] == 6_919
    assert counts["interactions"] == counts["offer_history"] == 0
    tables = read_source(url)
    assert {name: len(frame) for name, frame in tables.items()} == counts
    log = read_cdnow(master=False)
    assert tables["transactions"]["amount"].sum() == pytest.approx(log["dollar_value"].sum())
    assert (tables["transactions"]["account_id"] == tables["transactions"]["customer_id"]).all()
    first = log.groupby("customer_id")["date"].min()
    joined = tables["customers"].set_index("customer_id")["joined_on"]
    assert (pd.to_datetime(joined.loc[first.index]) == first).all()
    assert not (cx_home / "world" / "truth.parquet").exists()


def test_cx_load_cdnow_master_prints_counts(cx_home, capsys) -> None:
    assert cli.main(["load-cdnow", "--master"]) == 0
    output = capsys.readouterr().out
    assert "customers: 23,570 rows" in output
    assert "transactions: 69,659 rows" in output
