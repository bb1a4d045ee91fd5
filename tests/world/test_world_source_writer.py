"""The fast bulk paths store exactly what SQLAlchemy's own insert would store."""

from __future__ import annotations

import sqlite3
from datetime import date, datetime

import numpy as np
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipelines.source_schema import REGIONS, customers, transactions
from cx_pipelines.world.source_writer import SourceWriter, source_engine

texts = st.one_of(st.none(), st.text(min_size=1, max_size=12))
rows = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(REGIONS)),
        texts,
        st.one_of(st.none(), st.integers(1900, 2010)),
        st.one_of(st.none(), st.floats(-1e9, 1e9, allow_nan=False)),
        st.dates(date(1950, 1, 1), date(2030, 12, 31)),
        st.datetimes(datetime(1990, 1, 1), datetime(2030, 12, 31)).map(
            lambda moment: moment.replace(microsecond=0)
        ),
    ),
    min_size=1,
    max_size=30,
)


def columns_of(records: list[tuple]) -> tuple[dict, dict]:
    region, email, birth_year, income, joined, moment = zip(*records, strict=True)
    ids = np.arange(1, len(records) + 1, dtype=np.int64)
    customer_columns = {
        "customer_id": ids,
        "region": np.array(region, dtype=object),
        "email": np.array(email, dtype=object),
        "birth_year": np.array(birth_year, dtype=object),
        "annual_income": np.array([np.nan if v is None else v for v in income], dtype=float),
        "joined_on": np.array(joined, dtype="datetime64[D]"),
    }
    transaction_columns = {
        "transaction_id": ids,
        "customer_id": ids,
        "occurred_at": np.array(moment, dtype="datetime64[s]"),
        "amount": np.array([np.nan if v is None else v for v in income], dtype=float),
    }
    return customer_columns, transaction_columns


def as_parameters(columns: dict) -> list[dict]:
    converted = {}
    for name, values in columns.items():
        if values.dtype.kind == "M":
            unit = "datetime64[D]" if name == "joined_on" else "datetime64[us]"
            converted[name] = values.astype(unit).astype(object).tolist()
        elif values.dtype.kind == "f":
            converted[name] = [None if np.isnan(v) else float(v) for v in values]
        else:
            converted[name] = values.tolist()
    return [dict(zip(converted, row, strict=True)) for row in zip(*converted.values(), strict=True)]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=rows)
def test_sqlite_bulk_path_stores_what_sqlalchemy_stores(tmp_path, records) -> None:
    customer_columns, transaction_columns = columns_of(records)
    fast, core = tmp_path / "fast.db", tmp_path / "core.db"
    for path in (fast, core):
        path.unlink(missing_ok=True)
    writer = SourceWriter(source_engine(f"sqlite:///{fast}"))
    writer.recreate_tables()
    writer.write({"customers": customer_columns, "transactions": transaction_columns})
    writer.engine.dispose()
    engine = sa.create_engine(f"sqlite:///{core}")
    with engine.begin() as connection:
        for table, columns in ((customers, customer_columns), (transactions, transaction_columns)):
            table.create(connection)
            connection.execute(table.insert(), as_parameters(columns))
    engine.dispose()
    for table in ("customers", "transactions"):
        query = f"SELECT * FROM {table} ORDER BY 1"
        with sqlite3.connect(fast) as left, sqlite3.connect(core) as right:
            assert left.execute(query).fetchall() == right.execute(query).fetchall(), table


@pytest.mark.postgres
def test_postgres_copy_keeps_awkward_text(postgres_url: str) -> None:
    schema = "world_writer_test"
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
    url = sa.engine.make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    awkward = ["a,b", 'say "hi"', "line\nbreak", "ümlaut", None, "\\N"]
    records = [
        ("north", text, 1980, 1.5, date(2020, 1, 2), datetime(2025, 1, 2, 3, 4, 5))
        for text in awkward
    ]
    customer_columns, transaction_columns = columns_of(records)
    writer = SourceWriter(sa.create_engine(url))
    try:
        writer.recreate_tables()
        writer.write({"customers": customer_columns, "transactions": transaction_columns})
        with writer.engine.connect() as connection:
            stored = connection.execute(
                sa.select(customers.c.email, customers.c.joined_on).order_by(
                    customers.c.customer_id
                )
            ).all()
            moments = connection.execute(sa.select(transactions.c.occurred_at)).scalars().all()
    finally:
        writer.engine.dispose()
        with engine.begin() as connection:
            connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()
    assert [row.email for row in stored] == awkward
    assert {row.joined_on for row in stored} == {date(2020, 1, 2)}
    assert set(moments) == {datetime(2025, 1, 2, 3, 4, 5)}


def test_a_generation_that_fails_part_way_leaves_the_previous_world(cx_home, monkeypatch):
    from cx_pipelines import config
    from cx_pipelines.world import generate_world, generator

    generate_world(customers=1_000, seed=3, source_url=config.source_url())
    truth_before = (config.world_dir() / "truth.parquet").read_bytes()

    def fail_in_second_chunk(seed, block, *arguments):
        if block >= 1:
            raise RuntimeError("disk full")
        return original(seed, block, *arguments)

    original = generator.draw_block
    monkeypatch.setattr(generator, "draw_block", fail_in_second_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        generator.generate(
            customers=3_000, seed=4, source_url=config.source_url(), chunk_customers=1_000
        )

    engine = sa.create_engine(config.source_url())
    with engine.connect() as connection:
        customers = connection.execute(sa.text("select count(*) from customers")).scalar()
    engine.dispose()
    assert customers == 1_000
    assert (config.world_dir() / "truth.parquet").read_bytes() == truth_before
