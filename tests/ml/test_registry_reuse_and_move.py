"""Registration is skipped when nothing changed; a moved CX_HOME loads its own models."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import load_spec
from cx_pipelines.ml.supervised.classifier import fit_classifier


@pytest.fixture
def spec():
    return dataclasses.replace(
        load_spec("propensity"),
        name="reuse_test",
        include=("income",),
        calibration="none",
        estimator_params={"max_iter": 5},
    )


def _frame(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"income": rng.normal(size=200), "responded": rng.random(200) < 0.5})


def _register(spec, frame, *, params=None):
    fingerprint = registry.training_fingerprint(
        spec, frames={"training": frame}, params=params or {"random_state": 0}
    )
    return registry.log_and_register(
        spec=spec,
        model=fit_classifier(frame, spec),
        input_example=frame[["income"]],
        metrics={"auc": 0.61},
        fingerprint=fingerprint,
    )


def test_fingerprint_follows_data_spec_and_parameters(spec):
    frame = _frame()
    base = registry.training_fingerprint(spec, frames={"t": frame}, params={"random_state": 0})
    assert base == registry.training_fingerprint(
        spec, frames={"t": frame.copy()}, params={"random_state": 0}
    )
    changed = frame.copy()
    changed.loc[7, "income"] += 1e-9
    others = [
        registry.training_fingerprint(spec, frames={"t": changed}, params={"random_state": 0}),
        registry.training_fingerprint(spec, frames={"t": frame}, params={"random_state": 1}),
        registry.training_fingerprint(
            dataclasses.replace(spec, estimator_params={"max_iter": 6}),
            frames={"t": frame},
            params={"random_state": 0},
        ),
    ]
    assert base not in others and len(set(others)) == 3


def test_unchanged_inputs_reuse_the_registered_version(cx_home, spec):
    frame = _frame()
    first = _register(spec, frame)
    second = _register(spec, frame)

    assert not first.reused
    assert second.reused and second.version == first.version
    assert "registration skipped" in second.reason and f"version {first.version}" in second.reason
    versions = registry.client().search_model_versions(f"name='{spec.registered_name}'")
    assert len(versions) == 1

    third = _register(spec, _frame(seed=1))  # new data: a new version
    assert not third.reused and third.version != first.version


def test_a_moved_cx_home_loads_its_models_from_the_new_place(cx_home, spec, tmp_path, monkeypatch):
    frame = _frame()
    version = _register(spec, frame)
    moved = tmp_path / "moved"
    shutil.move(cx_home, moved)  # the old folder is gone
    monkeypatch.setenv("CX_HOME", str(moved))
    monkeypatch.setenv("DAGSTER_HOME", str(moved / "dagster"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # mlflow exported the old one

    model = registry.load_model(spec.registered_name, version.version)

    np.testing.assert_allclose(
        model.predict_probability(frame.head(5)),
        fit_classifier(frame, spec).predict_probability(frame.head(5)),
    )
    run = registry.client().get_run(version.run_id)
    assert run.info.artifact_uri.startswith((moved / "mlartifacts").as_uri())
    assert str(cx_home) not in (moved / "mlflow.db").read_bytes().decode("latin-1")
