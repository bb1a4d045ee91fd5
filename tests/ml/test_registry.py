"""MLflow registry: runs and versions land in CX_HOME; champion/challenger follow the metric."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised.classifier import fit_classifier


@pytest.fixture
def spec():
    base = load_spec("propensity")
    return dataclasses.replace(
        base,
        name="registry_test",
        include=("income", "segment"),
        categorical=("segment",),
        calibration="none",
        estimator_params={"max_iter": 10},
    )


def _frame(size: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    income = rng.normal(size=size)
    return pd.DataFrame(
        {
            "income": income,
            "segment": rng.choice(["a", "b"], size),
            "responded": rng.random(size) < 1 / (1 + np.exp(-2 * income)),
        }
    )


def test_log_register_and_load_back_in_cx_home(cx_home, spec):
    frame = _frame()
    model = fit_classifier(frame, spec)
    version = registry.log_and_register(
        spec=spec,
        model=model,
        input_example=frame[["income", "segment"]],
        metrics={"auc": 0.8, "expected_calibration_error": 0.01},
        plots={"calibration": b"\x89PNG fake"},
    )
    assert version.version == "1"
    assert (cx_home / "mlflow.db").exists()
    assert any((cx_home / "mlartifacts").rglob("calibration.png"))
    assert registry.version_for_alias(spec.registered_name, registry.CHALLENGER) == "1"
    assert registry.version_for_alias(spec.registered_name, registry.CHAMPION) is None
    loaded = registry.load_model(spec.registered_name, "1")
    np.testing.assert_allclose(
        loaded.predict_probability(frame.head(20)), model.predict_probability(frame.head(20))
    )
    assert registry.version_tag(spec.registered_name, "1", "metric_value") == "0.8"
    run = registry.client().get_run(version.run_id)
    assert run.data.metrics["auc"] == 0.8
    assert run.data.params["spec"] == "registry_test"


def test_promotion_moves_the_champion_alias_and_drops_the_challenger(cx_home, spec):
    frame = _frame()
    model = fit_classifier(frame, spec)
    for _ in range(2):
        registry.log_and_register(
            spec=spec, model=model, input_example=frame[["income", "segment"]], metrics={"auc": 0.7}
        )
    registry.promote(spec.registered_name, "1")
    assert registry.version_for_alias(spec.registered_name, registry.CHAMPION) == "1"
    assert registry.version_for_alias(spec.registered_name, registry.CHALLENGER) == "2"
    registry.promote(spec.registered_name, "2")
    assert registry.version_for_alias(spec.registered_name, registry.CHAMPION) == "2"
    assert registry.version_for_alias(spec.registered_name, registry.CHALLENGER) is None
    assert registry.load_model(spec.registered_name, "champion").features == ["income", "segment"]


def test_non_finite_metrics_are_refused(cx_home, spec):
    frame = _frame()
    with pytest.raises(registry.RegistryError, match="'auc' is nan"):
        registry.log_and_register(
            spec=spec,
            model=fit_classifier(frame, spec),
            input_example=frame,
            metrics={"auc": float("nan")},
        )


@pytest.mark.parametrize(
    ("challenger", "champion", "direction", "margin", "promote", "reason"),
    [
        (0.80, None, "maximize", 0.0, True, "no champion yet"),
        (0.80, 0.78, "maximize", 0.0, True, "promoted: challenger v2 auc 0.8000 vs champion v1"),
        (0.78, 0.80, "maximize", 0.0, False, "champion stays"),
        (0.80, 0.80, "maximize", 0.0, False, "champion stays"),
        (0.805, 0.80, "maximize", 0.01, False, "required margin 0.01"),
        (0.01, 0.02, "minimize", 0.0, True, "lower is better"),
    ],
)
def test_decide_promotion(spec, challenger, champion, direction, margin, promote, reason):
    rule = dataclasses.replace(spec, direction=direction, min_improvement=margin)
    decision = registry.decide_promotion(
        rule,
        challenger_version="2",
        challenger_value=challenger,
        champion_version=None if champion is None else "1",
        champion_value=champion,
    )
    assert decision.promote is promote
    assert reason in decision.reason


@pytest.mark.parametrize(
    ("challenger", "champion", "upper", "promote", "reason"),
    [
        # Lower on the point figure, but within the noise: promoted.
        (0.0061, 0.0066, 0.0004, True, "promoted (not credibly worse)"),
        # Worse in at least the confidence share of resamples: the champion stays.
        (0.0040, 0.0066, -0.0003, False, "champion stays (challenger credibly worse)"),
        # Reproducing the champion's figure is still not a promotion.
        (0.0066, 0.0066, 0.0, False, "only reproduces the champion"),
    ],
)
def test_decide_promotion_not_credibly_worse(spec, challenger, champion, upper, promote, reason):
    rule = dataclasses.replace(spec, promotion_rule="not_credibly_worse")
    decision = registry.decide_promotion(
        rule,
        challenger_version="2",
        challenger_value=challenger,
        champion_version="1",
        champion_value=champion,
        difference_upper=upper,
    )
    assert decision.promote is promote
    assert reason in decision.reason


def test_the_point_rule_ignores_a_bootstrap_figure(spec):
    decision = registry.decide_promotion(
        spec,
        challenger_version="2",
        challenger_value=0.78,
        champion_version="1",
        champion_value=0.80,
        difference_upper=0.5,
    )
    assert not decision.promote
