"""Retraining's refit and the gate's rows: a refitted champion is judged only on holdout rows
it has not seen; the uplift gate promotes unless the challenger is credibly worse; the
registered uplift version is refitted on training + holdout and its card says so."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import yaml

from cx_pipelines import config
from cx_pipelines.defs.runs import materialize
from cx_pipelines.defs.training.challenger import (
    FITTED_THROUGH_TAG,
    Challenger,
    gate_tags,
    unseen_rows,
)
from cx_pipelines.ml import evaluation, model_cards, registry
from cx_pipelines.ml.evaluation import Report
from cx_pipelines.ml.specs import load_spec, models_dir
from cx_pipelines.world import generate_world


class _Scorer:
    """A stand-in model whose holdout predictions are given."""

    def __init__(self, predictions: np.ndarray) -> None:
        self.predictions = predictions


def _challenger(model: _Scorer, holdout: pd.DataFrame) -> Challenger:
    labels, arms = holdout["responded"].to_numpy(), holdout["treated"].to_numpy()
    return Challenger(
        model,
        holdout,
        Report(metrics={}, plots={}, tables={}),
        champion_score=lambda _: 0.0,
        params={},
        table=pd.DataFrame(),
        predict=lambda any_model: any_model.predictions,
        row_metric=lambda scores, rows: evaluation.qini_coefficient(
            labels[rows], arms[rows], scores[rows]
        ),
    )


@pytest.fixture
def holdout() -> tuple[pd.DataFrame, np.ndarray]:
    """Two cycles of randomised contacts with a known uplift per row."""
    rng = np.random.default_rng(3)
    rows = 8_000
    effect = rng.uniform(-0.02, 0.12, rows)
    treated = rng.random(rows) < 0.5
    frame = pd.DataFrame(
        {
            "contacted_at": np.where(
                np.arange(rows) < rows // 2,
                pd.Timestamp("2026-10-01"),
                pd.Timestamp("2026-10-08"),
            ),
            "treated": treated,
            "responded": rng.random(rows) < 0.05 + np.where(treated, effect, 0.0),
        }
    )
    return frame, effect


def test_a_refitted_champion_is_judged_only_on_rows_after_its_last_contact(holdout):
    frame, _ = holdout
    rows, rule = unseen_rows(frame, "2026-10-01 00:00:00")
    assert len(rows) == len(frame) // 2
    assert (frame["contacted_at"].iloc[rows] > pd.Timestamp("2026-10-01")).all()
    assert "after the champion's last fitted contact" in rule
    everything, rule = unseen_rows(frame, None)
    assert len(everything) == len(frame) and rule == "whole holdout"
    everything, rule = unseen_rows(frame, "2026-12-01 00:00:00")
    assert len(everything) == len(frame) and "no row after" in rule


def _decide(spec, tags):
    """The gate's decision on a challenger (version 2) from its gate tags against version 1."""
    return registry.decide_promotion(
        spec,
        challenger_version="2",
        challenger_value=float(tags["gate_challenger_value"]),
        champion_version="1",
        champion_value=float(tags["champion_metric_value"]),
        difference_upper=float(tags["gate_difference_upper"]),
    )


def test_the_uplift_gate_keeps_the_champion_only_against_a_credibly_worse_challenger(holdout):
    frame, effect = holdout
    spec = replace(load_spec("uplift"), promotion_rule="not_credibly_worse")
    truthful = _Scorer(effect)
    reversed_ranking = _Scorer(-effect)
    noisy = _Scorer(effect + np.random.default_rng(1).normal(0, 0.01, len(effect)))
    seen = "2026-10-01 00:00:00"

    worse = gate_tags(spec, _challenger(reversed_ranking, frame), truthful, seen)
    assert worse["gate_rows"] == str(len(frame) // 2)
    assert float(worse["gate_difference_upper"]) < 0
    decision = _decide(spec, worse)
    assert not decision.promote and "credibly worse" in decision.reason

    close = gate_tags(spec, _challenger(noisy, frame), truthful, seen)
    assert float(close["gate_difference_upper"]) > 0
    # On the point figure alone the noisy challenger may lose; it is promoted all the same.
    decision = _decide(spec, close)
    assert decision.promote

    point = replace(spec, promotion_rule="point")
    tags = gate_tags(point, _challenger(noisy, frame), truthful, None)
    assert "gate_difference_upper" not in tags


@pytest.mark.slow
def test_the_registered_uplift_version_is_refitted_on_training_and_holdout(
    cx_home, tmp_path, monkeypatch
):
    folder = tmp_path / "models"
    shutil.copytree(models_dir(), folder)
    path = folder / "uplift.yaml"
    spec = yaml.safe_load(path.read_text())
    spec["holdout"]["refit"] = True
    path.write_text(yaml.safe_dump(spec))
    monkeypatch.setenv("CX_MODELS_DIR", str(folder))
    generate_world(customers=3_000, seed=5, source_url=config.source_url())
    result = materialize("*uplift_model")
    assert result.success
    version = registry.version_for_alias("cx_uplift", registry.CHAMPION)
    assert version == "1"
    details = registry.client().get_model_version("cx_uplift", version)
    card = model_cards.read_card("cx_uplift", version)
    model = registry.load_model("cx_uplift", version)
    run = registry.client().get_run(details.run_id)
    judged_rows = int(run.data.params["training_rows"])
    # The judged fit saw the training window; the registered one also the holdout.
    assert model.training_rows_ > judged_rows
    assert details.tags[FITTED_THROUGH_TAG] == card["window.holdout_end"]
    assert card["window.registered_fit_end"] == card["window.holdout_end"]
    assert "training window only" in card["window.evaluated_fit"]
