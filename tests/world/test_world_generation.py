"""The synthetic bank: deterministic, chunk-invariant, consistent and faithful to its truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from world_support import World, build_world, read_source

from cx_pipelines import source_schema as schema
from cx_pipelines.world import WORLD_END, WORLD_START, generate_world
from cx_pipelines.world.generator import WorldSizeError, generate

DOMAINS = {
    ("customers", "customer_type"): schema.CUSTOMER_TYPES,
    ("customers", "region"): schema.REGIONS,
    ("accounts", "product_type"): schema.PRODUCT_TYPES,
    ("accounts", "status"): schema.ACCOUNT_STATUSES,
    ("transactions", "merchant_category"): schema.MERCHANT_CATEGORIES,
    ("transactions", "channel"): schema.TRANSACTION_CHANNELS,
    ("interactions", "channel"): schema.INTERACTION_CHANNELS,
    ("interactions", "interaction_type"): schema.INTERACTION_TYPES,
    ("interactions", "product_type"): schema.PRODUCT_TYPES,
    ("inbound_events", "event_type"): schema.EVENT_TYPES,
    ("offer_history", "offer_type"): schema.OFFER_TYPES,
    ("offer_history", "channel"): schema.OFFER_CHANNELS,
}


def assert_same_world(left: World, right: World) -> None:
    for name, frame in left.tables.items():
        pd.testing.assert_frame_equal(frame, right.tables[name], obj=name)
    pd.testing.assert_frame_equal(left.truth, right.truth, obj="truth")


def test_same_seed_gives_identical_tables_and_truth(tmp_path, world: World) -> None:
    again = build_world(tmp_path, customers=3_000, seed=11)
    assert_same_world(world, again)
    assert again.population == world.population


def test_different_seed_gives_a_different_world(tmp_path, world: World) -> None:
    other = build_world(tmp_path, customers=3_000, seed=12)
    assert not other.truth["purchase_rate"].equals(world.truth["purchase_rate"])
    assert len(other.tables["transactions"]) != len(world.tables["transactions"])
    assert other.population["campaigns"] != world.population["campaigns"]


def test_chunk_size_does_not_change_the_data(tmp_path, monkeypatch) -> None:
    worlds = []
    for chunk in (1_000, 2_000):
        home = tmp_path / f"chunk{chunk}"
        monkeypatch.setenv("CX_HOME", str(home))
        url = f"sqlite:///{tmp_path / f'chunk{chunk}.db'}"
        summary = generate(customers=2_500, seed=5, source_url=url, chunk_customers=chunk)
        worlds.append((read_source(url), pd.read_parquet(summary.truth_path)))
    (tables, truth), (other_tables, other_truth) = worlds
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, other_tables[name], obj=name)
    pd.testing.assert_frame_equal(truth, other_truth)


def test_a_smaller_world_is_the_start_of_a_larger_one(tmp_path, world: World) -> None:
    smaller = build_world(tmp_path, customers=1_500, seed=11)
    for name, frame in smaller.tables.items():
        start = world.tables[name].query("customer_id <= 1500").reset_index(drop=True)
        pd.testing.assert_frame_equal(frame, start, obj=name)
    pd.testing.assert_frame_equal(smaller.truth, world.truth.iloc[:1_500])


def test_row_counts_match_the_tables_and_budget(world: World) -> None:
    counts = {name: len(frame) for name, frame in world.tables.items()}
    assert world.summary.row_counts == counts
    assert counts["customers"] == 3_000
    per_customer = {name: rows / 3_000 for name, rows in counts.items()}
    assert 18 < per_customer["transactions"] < 32
    assert 7 < per_customer["interactions"] < 14
    assert "3,000 customers" in world.summary.describe()


def test_primary_keys_are_unique_and_references_resolve(world: World) -> None:
    tables = world.tables
    for table in schema.SOURCE_TABLES:
        key = schema.PRIMARY_KEYS[table.name]
        assert tables[table.name][key].is_unique, table.name
    customer_ids = set(tables["customers"]["customer_id"])
    for name in ("accounts", "transactions", "interactions", "inbound_events", "offer_history"):
        assert set(tables[name]["customer_id"]) <= customer_ids, name
    owner = tables["accounts"].set_index("account_id")["customer_id"]
    transactions = tables["transactions"]
    assert (owner.loc[transactions["account_id"]].to_numpy() == transactions["customer_id"]).all()
    spent_on = tables["accounts"].set_index("account_id").loc[transactions["account_id"]]
    assert spent_on["product_type"].isin(["credit_card", "checking"]).all()
    events = tables["inbound_events"].dropna(subset=["account_id"])
    event_owner = owner.loc[events["account_id"].astype("int64")].to_numpy()
    assert (event_owner == events["customer_id"]).all()


def test_values_stay_in_the_schema_domains_and_the_world_window(world: World) -> None:
    for (table, column), domain in DOMAINS.items():
        values = world.tables[table][column].dropna()
        assert values.isin(domain).all(), f"{table}.{column}: {set(values) - set(domain)}"
    for table, column in [
        ("transactions", "occurred_at"),
        ("interactions", "occurred_at"),
        ("inbound_events", "occurred_at"),
        ("offer_history", "contacted_at"),
    ]:
        stamps = world.tables[table][column]
        assert stamps.min() >= WORLD_START and stamps.max() <= WORLD_END, f"{table}.{column}"
    cards = world.tables["accounts"].query("product_type == 'credit_card'")
    assert cards["credit_limit"].gt(0).all()
    others = world.tables["accounts"].query("product_type != 'credit_card'")
    assert others["credit_limit"].isna().all()
    assert (world.tables["accounts"]["days_past_due"] > 0).any()


def test_accounts_open_before_their_first_transaction(world: World) -> None:
    first = world.tables["transactions"].groupby("account_id")["occurred_at"].min()
    opened = world.tables["accounts"].set_index("account_id")["opened_on"].loc[first.index]
    assert (pd.to_datetime(opened) <= first.dt.normalize()).all()
    joined = world.tables["customers"].set_index("customer_id")["joined_on"]
    first_by_customer = world.tables["transactions"].groupby("customer_id")["occurred_at"].min()
    assert (pd.to_datetime(joined.loc[first_by_customer.index]) <= first_by_customer).all()


def test_source_tables_hold_exactly_the_schema_columns(world: World) -> None:
    engine = sa.create_engine(world.url)
    inspector = sa.inspect(engine)
    truth_columns = set(world.truth.columns) - {"customer_id"}
    for table in schema.SOURCE_TABLES:
        columns = {column["name"] for column in inspector.get_columns(table.name)}
        assert columns == set(table.columns.keys()), table.name
        assert not columns & truth_columns, table.name
    engine.dispose()


def test_truth_has_one_row_per_customer_with_every_probability(world: World) -> None:
    truth = world.truth
    assert truth["customer_id"].tolist() == world.tables["customers"]["customer_id"].tolist()
    for offer in schema.OFFER_TYPES:
        for channel in schema.OFFER_CHANNELS:
            for arm in ("control", "treated"):
                column = truth[f"p_{arm}__{offer}__{channel}"]
                assert column.between(0, 1).all()
    assert truth["dropped_out_at"].isna().equals(truth["alive_at_end"])
    uplift = np.concatenate(
        [
            truth[f"p_treated__{o}__{c}"] - truth[f"p_control__{o}__{c}"]
            for o in schema.OFFER_TYPES
            for c in schema.OFFER_CHANNELS
        ]
    )
    assert (uplift > 0).mean() > 0.6 and (uplift < 0).mean() > 0.02


def test_population_json_names_the_papers_parameters(world: World) -> None:
    population = world.population
    assert set(population["bg_nbd"]) == {"r", "alpha", "a", "b"}
    assert set(population["gamma_gamma"]) == {"p", "q", "v"}
    assert population["customers"] == 3_000 and population["seed"] == 11
    assert population["world_start"] == WORLD_START.isoformat()
    assert population["world_end"] == WORLD_END.isoformat()
    assert len(population["campaigns"]) == world.tables["offer_history"]["campaign_id"].nunique()


def test_world_size_is_checked(cx_home) -> None:
    with pytest.raises(WorldSizeError, match="at least 1"):
        generate_world(customers=0, seed=1, source_url=f"sqlite:///{cx_home / 's.db'}")
