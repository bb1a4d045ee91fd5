"""Training assets end to end through Dagster on a small world: MLflow versions, promotion gates
(a planted worse challenger is not promoted, a better one is), and customer_scores."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from cx_pipelines import config, warehouse
from cx_pipelines.defs.runs import materialize
from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import models_dir
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import generate_world

PROPENSITY = "cx_propensity"


def _worse_models(folder: Path) -> Path:
    """A copy of models/ whose propensity spec only sees the customer's region (and whose
    uplift spec reports its posterior spread, ``spread_draws``)."""
    shutil.copytree(models_dir(), folder)
    path = folder / "propensity.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["features"] = {"include": ["region"], "categorical": ["region"]}
    spec["estimator"]["params"] = {"max_iter": 5, "max_leaf_nodes": 3}
    path.write_text(yaml.safe_dump(spec))
    path = folder / "uplift.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["estimator"]["params"]["spread_draws"] = 8
    path.write_text(yaml.safe_dump(spec))
    return folder


def _check(result, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


@pytest.mark.slow
def test_models_register_gate_promotion_and_score_customers(cx_home, tmp_path, monkeypatch):
    generate_world(customers=4_000, seed=5, source_url=config.source_url())
    worse = _worse_models(tmp_path / "worse_models")
    gate = "propensity_models_challenger_beats_champion"

    # First run: the (planted, weak) first version of every model becomes champion.
    monkeypatch.setenv("CX_MODELS_DIR", str(worse))
    first = materialize("*customer_scores")
    assert first.success
    assert _check(first, gate).passed
    assert registry.version_for_alias(PROPENSITY, registry.CHAMPION) == "1"
    for name in ("cx_uplift", "cx_attrition"):
        assert registry.version_for_alias(name, registry.CHAMPION) == "1"
    scores = warehouse.read_table("customer_scores")
    assert scores["customer_id"].is_unique and len(scores) == 4_000
    propensity_columns = [f"propensity__{o}__{c}" for o in OFFER_TYPES for c in OFFER_CHANNELS]
    assert scores[propensity_columns].notna().all().all()
    assert (
        scores[[f"uplift__{o}__{c}" for o in OFFER_TYPES for c in OFFER_CHANNELS]]
        .notna()
        .all()
        .all()
    )
    spread = [f"uplift_sd__{o}__{c}" for o in OFFER_TYPES for c in OFFER_CHANNELS]
    assert (scores[spread] > 0).all().all()  # the uplift model's posterior spread
    assert set(scores["propensity_model_version"]) == {"cx_propensity/1"}
    assert set(scores["attrition_model_version"]) == {"cx_attrition/1"}
    assert scores["spend_forecast_mlflow_run"].str.len().gt(20).all()
    run = registry.client().get_run(registry.client().get_model_version(PROPENSITY, "1").run_id)
    assert "auc" in run.data.metrics and "expected_calibration_error" in run.data.metrics
    artifacts = {item.path for item in registry.client().list_artifacts(run.info.run_id, "plots")}
    assert {"plots/calibration.png", "plots/gains.png"} <= artifacts

    # A better challenger (the real spec) beats it on the same holdout and is promoted.
    monkeypatch.delenv("CX_MODELS_DIR")
    better = materialize("propensity_models")
    evaluation = _check(better, gate)
    assert evaluation.passed, evaluation.description
    assert "promoted" in evaluation.description
    assert registry.version_for_alias(PROPENSITY, registry.CHAMPION) == "2"

    # The planted worse challenger loses: the check fails, the champion stays, the reason shows,
    # and customer_scores (downstream of the blocking gate) is not rebuilt from it. Trained
    # on the same data, spec and parameters as version 1, it reuses version 1 (no new one).
    monkeypatch.setenv("CX_MODELS_DIR", str(worse))
    worse_run = materialize("key:propensity_models or key:customer_scores")
    evaluation = _check(worse_run, gate)
    assert not evaluation.passed
    assert evaluation.description.startswith("champion stays: challenger v1 auc")
    assert registry.version_for_alias(PROPENSITY, registry.CHAMPION) == "2"
    assert registry.version_for_alias(PROPENSITY, registry.CHALLENGER) == "1"
    assert len(registry.client().search_model_versions(f"name='{PROPENSITY}'")) == 2
    assert not worse_run.success
    assert set(warehouse.read_table("customer_scores")["propensity_model_version"]) == {
        "cx_propensity/1"
    }
