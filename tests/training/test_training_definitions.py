"""The training domain's Dagster definitions: assets, blocking gates, resource, weekly schedule."""

from __future__ import annotations

import dagster as dg

from cx_pipelines.definitions import defs
from cx_pipelines.defs.training.resources import MlflowResource

MODEL_ASSETS = {
    "propensity_models",
    "uplift_model",
    "attrition_model",
    "hit_and_run_scores",
    "dormancy_scores",
    "hit_and_run_model",
    "dormancy_model",
    "spend_forecast",
    "customer_scores",
}


def test_assets_are_grouped_described_and_kinded():
    specs = {
        spec.key.to_user_string(): spec
        for spec in defs.resolve_all_asset_specs()
        if spec.group_name == "models"
    }
    assert set(specs) == MODEL_ASSETS
    for name, spec in specs.items():
        assert spec.group_name == "models", name
        assert spec.description, name
        assert "mlflow" in spec.kinds, name
    for name in (
        "propensity_models",
        "uplift_model",
        "attrition_model",
        "hit_and_run_model",
        "dormancy_model",
    ):
        assert "scikit-learn" in specs[name].kinds


def test_every_supervised_model_has_a_blocking_promotion_gate():
    from cx_pipelines.defs.training import defs as training_defs

    checks = {
        key.name: key.asset_key.to_user_string()
        for checks_def in training_defs.asset_checks
        for key in checks_def.check_keys
    }
    assert checks == {
        "propensity_models_challenger_beats_champion": "propensity_models",
        "uplift_model_challenger_beats_champion": "uplift_model",
        "attrition_model_challenger_beats_champion": "attrition_model",
        "hit_and_run_model_challenger_beats_champion": "hit_and_run_model",
        "dormancy_model_challenger_beats_champion": "dormancy_model",
    }
    for checks_def in training_defs.asset_checks:
        assert all(spec.blocking for spec in checks_def.check_specs)


def test_weekly_retraining_schedule_targets_the_models_group():
    schedule = defs.resolve_schedule_def("weekly_model_retraining")
    assert schedule.cron_schedule == "0 3 * * 1"
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    selected = defs.resolve_job_def("model_retraining").asset_layer.executable_asset_keys
    assert {key.to_user_string() for key in selected} == MODEL_ASSETS


def test_mlflow_resource_follows_the_environment(cx_home, monkeypatch):
    assert MlflowResource().uri() == f"sqlite:///{cx_home / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert MlflowResource().uri() == "http://mlflow.example:5000"
    assert MlflowResource(tracking_uri="sqlite:////tmp/x.db").uri() == "sqlite:////tmp/x.db"
