"""Model specs in models/: every shipped spec loads; mistakes are named with file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cx_pipelines.ml.specs import ModelSpecError, load_spec, load_specs, models_dir


def test_every_shipped_spec_loads_with_a_metric_direction():
    specs = load_specs()
    assert {
        "propensity",
        "uplift",
        "attrition",
        "hit_and_run",
        "dormancy",
        "spend_forecast",
    } <= set(specs)
    assert specs["uplift"].metric == "qini" and specs["uplift"].direction == "maximize"
    assert specs["spend_forecast"].direction == "minimize"


def _write(folder: Path, name: str, **changes) -> Path:
    document = yaml.safe_load((models_dir() / "propensity.yaml").read_text())
    document["name"] = name
    for key, value in changes.items():
        if value is None:
            document.pop(key)
        else:
            document[key] = value
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target": None}, "'target' is a required property"),
        ({"metric": {"name": "accuracy"}}, r"metric\.name: 'accuracy' is not one of"),
        ({"metric": {"name": "auc", "direction": "minimize"}}, "contradicts 'auc'"),
        ({"estimator": {"class": "RandomForestClassifier"}}, "not supported for kind 'propensity'"),
        ({"promotion": {"min_improvement": -1}}, r"promotion\.min_improvement"),
        ({"colour": "blue"}, "Additional properties are not allowed"),
    ],
)
def test_invalid_specs_are_named_with_file_and_field(tmp_path, changes, message):
    path = _write(tmp_path, "broken", **changes)
    with pytest.raises(ModelSpecError, match=message) as raised:
        load_spec(path)
    assert str(path) in str(raised.value)


def test_name_must_match_file_and_missing_spec_is_clear(tmp_path):
    path = _write(tmp_path, "renamed")
    path.rename(tmp_path / "other.yaml")
    with pytest.raises(ModelSpecError, match="must match the file name"):
        load_spec(tmp_path / "other.yaml")
    with pytest.raises(ModelSpecError, match="does not exist"):
        load_spec("nothing_here", directory=tmp_path)


def test_feature_globs_select_columns_and_an_empty_selection_is_an_error():
    spec = load_spec("propensity")
    columns = ["customer_id", "offer_type", "holds_savings", "holds_mortgage", "responded", "email"]
    assert spec.select_features(columns) == ["offer_type", "holds_savings", "holds_mortgage"]
    with pytest.raises(ModelSpecError, match="matches none"):
        spec.select_features(["customer_id", "email"])
