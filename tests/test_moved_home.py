"""A materialised CX_HOME copied and moved elsewhere reads, serves and retrains from its new
place; a re-run on unchanged data reuses the registered model version instead of adding one."""

from __future__ import annotations

import shutil

import pytest

from cx_pipelines import warehouse
from cx_pipelines.ml import registry


@pytest.mark.slow
def test_a_moved_home_reads_serves_and_reuses_its_model(materialised_world, tmp_path, monkeypatch):
    from cx_pipelines.defs.runs import materialize

    copied = tmp_path / "copied"
    shutil.copytree(materialised_world.home, copied)
    moved = tmp_path / "moved"
    shutil.move(copied, moved)  # the copy's first folder is gone: old paths cannot work

    monkeypatch.setenv("CX_HOME", str(moved))
    monkeypatch.setenv("DAGSTER_HOME", str(moved / "dagster"))
    monkeypatch.delenv("CX_SOURCE_URL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert warehouse.query("select count(*) as n from customers")["n"][0] == 600
    champion = registry.version_for_alias("cx_attrition", registry.CHAMPION)
    model = registry.load_model("cx_attrition", "champion")
    assert model is not None
    versions = registry.client().search_model_versions("name='cx_attrition'")

    result = materialize("attrition_model")

    assert result.success
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == "attrition_model"
    ]
    metadata = event.step_materialization_data.materialization.metadata
    assert metadata["model_version"].value == champion
    assert "registration skipped" in metadata["registration"].value
    after = registry.client().search_model_versions("name='cx_attrition'")
    assert len(after) == len(versions)
    run = registry.client().get_run(after[0].run_id)
    assert run.info.artifact_uri.startswith((moved / "mlartifacts").as_uri())
