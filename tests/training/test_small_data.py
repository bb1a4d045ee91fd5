"""Small or offer-less books: models that cannot be trained say why, the run and customer_scores go
on, and MLflow runs are linked from the assets (a path for the local store, a URL for a server)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from cx_pipelines import config, warehouse
from cx_pipelines.defs.runs import materialize
from cx_pipelines.defs.training.models import require_holdout_classes
from cx_pipelines.defs.training.resources import mlflow_run_metadata
from cx_pipelines.ml import registry
from cx_pipelines.ml.errors import InsufficientDataError
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised.classifier import fit_classifier
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import generate_world
from cx_pipelines.world.cdnow import load_cdnow

OFFER_SCORES = [
    f"{prefix}__{offer}__{channel}"
    for prefix in ("propensity", "uplift")
    for offer in OFFER_TYPES
    for channel in OFFER_CHANNELS
]


def _metadata(asset: str) -> dict[str, dg.MetadataValue]:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization.metadata


def _check(result: dg.ExecuteInProcessResult, name: str):
    [evaluation] = [e for e in result.get_asset_check_evaluations() if e.check_name == name]
    return evaluation


def _assert_not_trained(result, asset: str, model: str, *expected: str) -> str:
    reason = str(_metadata(asset)["not_trained_reason"].value)
    assert reason.startswith(f"{model} not trained: ")
    for fragment in expected:
        assert fragment in reason, reason
    gate = _check(result, f"{asset}_challenger_beats_champion")
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert "there is no champion yet" in gate.description
    assert registry.version_for_alias(model, registry.CHAMPION) is None
    return reason


@pytest.mark.slow
def test_a_300_customer_book_scores_customers_without_the_models_it_cannot_train(cx_home):
    generate_world(customers=300, seed=5, source_url=config.source_url())
    result = materialize("*customer_scores")
    assert result.success

    # Two treated responders: no propensity model, and the reason names counts and need.
    propensity_reason = _assert_not_trained(
        result, "propensity_models", "cx_propensity", "2 positive", "at least 20 of each"
    )
    uplift_reason = _assert_not_trained(
        result, "uplift_model", "cx_uplift", "1 control responders", "at least 5 of each"
    )
    # Attrition has enough of both outcomes: trained, registered, promoted, and described.
    attrition = _metadata("attrition_model")
    assert attrition["trained"].value is True
    assert set(attrition["training"].value["class_counts"]) == {"positive", "negative"}
    assert registry.version_for_alias("cx_attrition", registry.CHAMPION) == "1"

    scores = warehouse.read_table("customer_scores")
    assert len(scores) == 300 and scores["customer_id"].is_unique
    assert scores[OFFER_SCORES].isna().all().all()
    assert scores["propensity_model_version"].isna().all()
    assert set(scores["attrition_model_version"]) == {"cx_attrition/1"}
    assert scores["attrition_risk"].notna().any()
    missing = _metadata("customer_scores")["missing_scores"].value
    assert missing == {"propensity": propensity_reason, "uplift": uplift_reason}

    # MLflow links on a local store: the run's artefact folder as a path, the run id as text.
    link = attrition["mlflow_run"]
    assert isinstance(link, dg.PathMetadataValue)
    run_id = str(attrition["mlflow_run_id"].value)
    assert run_id in str(link.value) and (Path(str(link.value)) / "plots" / "gains.png").exists()
    assert "mlflow ui --backend-store-uri sqlite:///" in str(attrition["mlflow_ui"].value)
    assert isinstance(_metadata("spend_forecast")["mlflow_run"], dg.PathMetadataValue)


def _register_propensity_champion_from_another_book() -> None:
    """A cx_propensity champion trained on some other data (say, an earlier synthetic bank)."""
    rng = np.random.default_rng(0)
    income = rng.normal(size=400)
    frame = pd.DataFrame(
        {"income": income, "responded": rng.random(400) < 1 / (1 + np.exp(-income))}
    )
    spec = dataclasses.replace(
        load_spec("propensity"), include=("income",), categorical=(), calibration="none"
    )
    model = fit_classifier(frame, spec)
    version = registry.log_and_register(
        spec=spec, model=model, input_example=frame[["income"]], metrics={"auc": 0.7}
    )
    registry.promote(spec.registered_name, version.version)


@pytest.mark.slow
def test_cdnow_without_offer_history_gives_btyd_outputs_and_customer_scores(cx_home):
    _register_propensity_champion_from_another_book()
    load_cdnow(source_url=config.source_url())
    result = materialize("*customer_scores")
    assert result.success
    for asset in ("rfm_summary", "hit_and_run_scores", "dormancy_scores", "spend_forecast"):
        assert len(warehouse.read_table(asset)) > 0, asset
    gate = _check(result, "propensity_models_challenger_beats_champion")
    assert not gate.passed and gate.severity == dg.AssetCheckSeverity.WARN
    assert "champion v1 stays registered, but customer_scores does not use it" in gate.description
    _assert_not_trained(result, "uplift_model", "cx_uplift", "no contacts of past campaigns")
    missing = _metadata("customer_scores")["missing_scores"].value
    assert set(missing) == {"propensity", "uplift"}
    assert "offer_history" in missing["propensity"]
    assert "champion v1 was trained on earlier data and is not used" in missing["propensity"]
    # CDNOW has no ages or incomes: attrition is trained without them and says so.
    training = _metadata("attrition_model")["training"].value
    assert {"age", "annual_income"} <= set(training["dropped_features"])
    scores = warehouse.read_table("customer_scores")
    assert len(scores) == 2_357
    assert scores[OFFER_SCORES].isna().all().all()
    assert scores[["attrition_risk", "expected_spend", "probability_alive"]].notna().all().all()


def test_mlflow_run_is_a_url_on_a_server_and_a_path_on_the_local_store(tmp_path):
    served = mlflow_run_metadata(
        "https://mlflow.example", experiment_id="4", run_id="abc", artifact_uri="s3://bucket/abc"
    )
    assert served["mlflow_run"] == dg.MetadataValue.url(
        "https://mlflow.example/#/experiments/4/runs/abc"
    )
    assert served["mlflow_run_id"] == dg.MetadataValue.text("abc")
    local = mlflow_run_metadata(
        f"sqlite:///{tmp_path}/mlflow.db",
        experiment_id="1",
        run_id="abc",
        artifact_uri=(tmp_path / "mlartifacts" / "abc" / "artifacts").as_uri(),
    )
    assert local["mlflow_run"] == dg.MetadataValue.path(
        str(tmp_path / "mlartifacts" / "abc" / "artifacts")
    )
    assert local["mlflow_ui"].value.startswith(
        f"mlflow ui --backend-store-uri sqlite:///{tmp_path}"
    )


def test_a_holdout_without_enough_of_an_outcome_cannot_judge_the_model():
    spec = load_spec("propensity")
    labels = pd.Series([True] * 3 + [False] * 40)
    with pytest.raises(InsufficientDataError) as caught:
        require_holdout_classes(labels, spec=spec, what="treated contacts' responses")
    assert "holdout of cx_propensity" in str(caught.value) and "3 positive" in str(caught.value)
    assert "cannot be judged against the champion" in str(caught.value)
    require_holdout_classes(pd.Series([True] * 5 + [False] * 5), spec=spec, what="responses")
