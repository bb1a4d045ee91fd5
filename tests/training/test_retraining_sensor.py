"""The retraining sensor asks for model_retraining once enough results are new to the models."""

from __future__ import annotations

import dagster as dg
import pytest

from cx_pipelines.definitions import defs
from cx_pipelines.defs.training.sensors import (
    THRESHOLD_VARIABLE,
    RetrainingSettingError,
    results_since_training,
    results_threshold,
    retrain_on_new_results,
)


def _materialised(instance: dg.DagsterInstance, asset: str, rows: int | None = None) -> None:
    metadata = {"dagster/row_count": rows} if rows is not None else {}
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, metadata=metadata))


def _tick(instance: dg.DagsterInstance) -> dg.RunRequest | dg.SkipReason:
    return retrain_on_new_results(dg.build_sensor_context(instance=instance))


@pytest.fixture
def instance(tmp_path):
    with dg.instance_for_test(temp_dir=str(tmp_path)) as test_instance:
        yield test_instance


def test_requests_retraining_once_enough_new_results_arrive(instance, monkeypatch):
    monkeypatch.setenv(THRESHOLD_VARIABLE, "100")
    assert "no interaction_results" in _tick(instance).skip_message
    _materialised(instance, "propensity_models")
    _materialised(instance, "uplift_model")
    _materialised(instance, "interaction_results", rows=60)
    skip = _tick(instance)
    assert isinstance(skip, dg.SkipReason) and "60 new interaction results" in skip.skip_message

    _materialised(instance, "interaction_results", rows=130)  # 130 rows, none seen by training
    request = _tick(instance)
    assert isinstance(request, dg.RunRequest)
    assert request.tags["cx/new_interaction_results"] == "130"
    assert _tick(instance).run_key == request.run_key, "the same results ask for one run only"

    _materialised(instance, "propensity_models")  # retrained on the 130 rows
    _materialised(instance, "uplift_model")
    assert results_since_training(instance).new_results == 0
    _materialised(instance, "interaction_results", rows=200)
    assert isinstance(_tick(instance), dg.SkipReason)  # 70 new < 100
    _materialised(instance, "interaction_results", rows=240)
    later = _tick(instance)
    assert isinstance(later, dg.RunRequest) and later.run_key != request.run_key
    assert later.tags["cx/new_interaction_results"] == "110"


def test_counts_from_the_older_of_the_two_response_models(instance):
    _materialised(instance, "interaction_results", rows=50)
    _materialised(instance, "propensity_models")
    assert results_since_training(instance).new_results == 50  # uplift never trained
    _materialised(instance, "uplift_model")
    _materialised(instance, "interaction_results", rows=80)
    _materialised(instance, "uplift_model")
    # propensity_models last saw 50 rows: 30 results are new to it
    assert results_since_training(instance).new_results == 30


def test_threshold_setting_is_checked(monkeypatch):
    monkeypatch.setenv(THRESHOLD_VARIABLE, "lots")
    with pytest.raises(RetrainingSettingError, match="'lots' is not a whole number"):
        results_threshold()
    monkeypatch.setenv(THRESHOLD_VARIABLE, "0")
    with pytest.raises(RetrainingSettingError, match="at least 1"):
        results_threshold()
    monkeypatch.delenv(THRESHOLD_VARIABLE)
    assert results_threshold() == 5_000


def test_sensor_and_weekly_schedule_both_target_model_retraining():
    assert defs.resolve_sensor_def("retrain_on_new_results").job_name == "model_retraining"
    assert defs.resolve_schedule_def("weekly_model_retraining").job_name == "model_retraining"
