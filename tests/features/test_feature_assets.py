"""One Dagster materialisation of every features asset and check from hand-made warehouse tables."""

from __future__ import annotations

import dagster as dg

from cx_pipelines import warehouse
from cx_pipelines.defs.features.assets import FEATURE_ASSETS
from cx_pipelines.defs.features.checks import FEATURE_CHECKS
from cx_pipelines.defs.warehouse_io import WarehouseIOManager

SOURCE_TABLES = [
    "customers",
    "accounts",
    "transactions",
    "interactions",
    "inbound_events",
    "offer_history",
]


def test_features_materialise_from_warehouse_tables(cx_home, random_bank):
    for name in SOURCE_TABLES:
        warehouse.write_table(name, random_bank[name])
    result = dg.materialize(
        [*FEATURE_ASSETS, *FEATURE_CHECKS, *(dg.AssetSpec(name) for name in SOURCE_TABLES)],
        resources={"io_manager": WarehouseIOManager()},
        run_config={"ops": {"customer_kpis": {"config": {"as_of": "2026-09-30"}}}},
    )
    assert result.success
    materialised = {
        event.asset_key.to_user_string(): event.materialization.metadata
        for event in result.get_asset_materialization_events()
    }
    assert set(materialised) == {asset.key.to_user_string() for asset in FEATURE_ASSETS}
    checks = {event.check_name: event.passed for event in result.get_asset_check_evaluations()}
    assert checks and all(checks.values()), checks

    kpis = warehouse.read_table("customer_kpis")
    assert len(kpis) == 60 and kpis["customer_id"].is_unique
    assert str(kpis["as_of"].iloc[0]).startswith("2026-10-01")
    assert materialised["customer_kpis"]["dagster/row_count"].value == 60
    clusters = warehouse.read_table("kpi_clusters")
    assert set(clusters["customer_id"]) == set(kpis["customer_id"])
    assert 3 <= clusters["cluster_id"].nunique() <= 8
    plot = materialised["kpi_clusters"]["cluster_profile_plot"].value
    assert plot.startswith("![") and "data:image/png;base64," in plot
    assert "cluster_profiles" in materialised["kpi_clusters"]
    assert len(warehouse.read_table("rfm_summary")) == 55  # customers who bought
    assert len(warehouse.read_table("account_kpis")) == 60
    assert set(warehouse.read_table("category_trends")["trend"]) <= {
        "growing",
        "stable",
        "shrinking",
    }
    opportunities = warehouse.read_table("spending_opportunities")
    assert opportunities["customer_id"].isin(kpis["customer_id"]).all()
    assert "segment" in warehouse.read_table("customer_segments").columns
    assert warehouse.query("SELECT count(*) AS n FROM category_associations")["n"].iloc[0] > 0
