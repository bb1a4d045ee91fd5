"""Run keys follow the models' content, not MLflow's random run ids (reproducible loops)."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from cx_pipelines.campaigns.targeting import TargetingSettings, run_key_for
from cx_pipelines.defs.campaigns.assets import content_inputs, model_versions


def scores(run_id: str, *, propensity: float = 0.2, version: str = "cx_propensity/3"):
    frame = pd.DataFrame(
        {
            "customer_id": np.arange(1, 6),
            "propensity__savings__email": propensity,
            "clv": np.linspace(10, 50, 5),
            "propensity_model_version": version,
            "uplift_model_version": "cx_uplift/2",
            "spend_forecast_mlflow_run": run_id,
        }
    )
    return frame


def key(frame: pd.DataFrame) -> str:
    versions = model_versions(frame)
    settings = TargetingSettings(decision_date=date(2026, 10, 1))
    return run_key_for(settings, fingerprint=content_inputs(frame, versions))


def test_the_run_key_ignores_mlflow_run_ids_and_follows_model_content() -> None:
    first = scores("0f3a9c2e5d7b4a1c8e6f0a2b4c6d8e0f")
    again = scores("9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b")  # the same loop run a second time
    assert model_versions(first) != model_versions(again)  # exports still trace the runs
    assert key(first) == key(again)
    assert key(scores("x", propensity=0.21)) != key(first)  # other scores
    assert key(scores("x", version="cx_propensity/4")) != key(first)  # another version
    changed = first.assign(clv=first["clv"] + 1)  # a refitted BTYD model's other values
    assert key(changed) != key(first)
