"""The customer_intelligence_record and online_features assets, through real Dagster runs."""

from __future__ import annotations

import json

import dagster as dg
import support

from cx_pipelines.defs.decisioning.intelligence import customer_intelligence_record
from cx_pipelines.online_store import open_store


def test_one_record_per_customer_and_channel_with_terms_and_trace(tmp_path):
    home = tmp_path / "cx"
    home.mkdir()
    with support.environment(home):
        support.write_warehouse(25)
        result = support.materialise(support.strategy_folder(home))
        records = support.warehouse_frame(home, "customer_intelligence_record")
        store = open_store()
        meta, known = store.meta(), store.read("7")
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert len(records) == 25 * 6 and not records.duplicated(["customer_id", "channel"]).any()
    assert records["customer_id"].dtype.kind == "i"  # the warehouse's integer ids
    assert not {"annual_income", "age", "email"} & set(records.columns)
    first = json.loads(records["treatments"].iloc[0])
    assert set(first[0]) == {"treatment", "rank", "score", "terms", "offer_type"}
    assert json.loads(records["trace"].iloc[0])["event"] == "periodic_review"
    metadata = result.asset_materializations_for_node("customer_intelligence_record")[0].metadata
    assert metadata["records"].value == 150
    assert metadata["model_versions"].data == {
        "cx_propensity": "3",
        "cx_uplift": "2",
        "cx_attrition": "1",
    }
    assert meta["customers"] == 25 and meta["model_versions"]["cx_propensity"] == "3"
    assert known["customer"]["customer_id"] == "7" and len(known["accounts"]) == 2


def test_the_record_refuses_a_strategy_changed_since_validation(tmp_path):
    home = tmp_path / "cx"
    home.mkdir()
    with support.environment(home):
        support.write_warehouse(5)
        folder = support.strategy_folder(home)
        support.materialise(folder)
        path = folder / support.STRATEGY.name
        path.write_text(path.read_text().replace("version: 1", "version: 2", 1))
        result = dg.materialize(
            [customer_intelligence_record],
            resources={
                "io_manager": support.WarehouseIOManager(),
                "strategies": support.StrategyRepository(directory=str(folder)),
            },
            instance=dg.DagsterInstance.ephemeral(),
            raise_on_error=False,
        )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "changed since strategy_catalog validated it" in failure


def test_online_features_leaves_a_manifest_table(tmp_path):
    home = tmp_path / "cx"
    home.mkdir()
    with support.environment(home):
        support.write_warehouse(8)
        support.materialise(support.strategy_folder(home))
        manifest = support.warehouse_frame(home, "online_features")
        meta = open_store().meta()
    assert len(manifest) == 1 and manifest["generation"].iloc[0] == meta["generation"]
    assert manifest["customers"].iloc[0] == 8 and manifest["backend"].iloc[0] == "sqlite"
