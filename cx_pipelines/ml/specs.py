"""Declarative model specs: one YAML file per model in ``models/`` (target, features, estimator,
holdout, metric, promotion rule), loaded and validated with errors that name the file and field.

Training reads these specs, so changing a hyperparameter or the promotion margin is a
reviewed edit to a file, not a code change.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cx_pipelines.ml.errors import ModelSpecError

KINDS = ("propensity", "attrition", "uplift", "hit_and_run", "dormancy", "spend_forecast")
CLASSIFIER_KINDS = ("propensity", "attrition", "uplift", "hit_and_run", "dormancy")
CLASSIFIERS = ("HistGradientBoostingClassifier",)
META_LEARNERS = ("s_learner", "t_learner", "x_learner", "dr_learner", "logistic_s_learner")
PROMOTION_RULES = ("point", "not_credibly_worse")
# The logistic s-learner is a logistic regression, not boosted trees (uplift only).
LOGISTIC_META_LEARNERS = {"logistic_s_learner": "LogisticRegression"}
# Fewest examples of the rarer outcome (per treatment arm for uplift) worth a model: with
# fewer, a "model" is a few anecdotes and is not trained (the training asset says why).
DEFAULT_MIN_CLASS_EXAMPLES = 20

# Which way is better for each metric the evaluation module computes.
METRIC_DIRECTIONS = {
    "auc": "maximize",
    "qini": "maximize",
    "auuc": "maximize",
    "expected_calibration_error": "minimize",
    "log_loss": "minimize",
    "brier_score": "minimize",
    "mean_absolute_error": "minimize",
    "root_mean_squared_error": "minimize",
}

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "kind", "description", "target", "features", "estimator", "metric"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
        "kind": {"enum": list(KINDS)},
        "description": {"type": "string", "minLength": 1},
        "target": {"type": "string", "minLength": 1},
        "features": {
            "type": "object",
            "additionalProperties": False,
            "required": ["include"],
            "properties": {
                "include": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                "exclude": {"type": "array", "items": {"type": "string"}},
                "categorical": {"type": "array", "items": {"type": "string"}},
            },
        },
        "estimator": {
            "type": "object",
            "additionalProperties": False,
            "required": ["class"],
            "properties": {
                "class": {"type": "string"},
                "params": {"type": "object"},
                "options": {"type": "object"},
                "calibration": {"enum": ["isotonic", "sigmoid", "none"]},
                "calibration_folds": {"type": "integer", "minimum": 2},
                "min_class_examples": {"type": "integer", "minimum": 1},
                "meta_learner": {"enum": list(META_LEARNERS)},
                "max_training_rows": {"type": "integer", "minimum": 100},
            },
        },
        "holdout": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "kind": {"enum": ["time"]},
                "fraction": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
                "days": {"type": "integer", "minimum": 1},
                "refit": {"type": "boolean"},
            },
        },
        "metric": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name"],
            "properties": {
                "name": {"enum": list(METRIC_DIRECTIONS)},
                "direction": {"enum": ["maximize", "minimize"]},
            },
        },
        "promotion": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "min_improvement": {"type": "number", "minimum": 0},
                "rule": {"enum": list(PROMOTION_RULES)},
                "confidence": {"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 1},
                "resamples": {"type": "integer", "minimum": 20},
            },
        },
    },
}


@dataclass(frozen=True)
class ModelSpec:
    """One model's declaration, as read from ``models/<name>.yaml``."""

    name: str
    kind: str
    description: str
    target: str
    include: tuple[str, ...]
    exclude: tuple[str, ...]
    categorical: tuple[str, ...]
    estimator_class: str
    estimator_params: dict[str, Any]
    calibration: str
    calibration_folds: int
    min_class_examples: int
    meta_learner: str | None
    max_training_rows: int | None
    holdout_fraction: float
    holdout_days: int
    metric: str
    direction: str
    min_improvement: float
    source: Path | None = field(default=None, compare=False)
    # Family-specific settings that are not estimator parameters (e.g. dormancy's windows).
    estimator_options: dict[str, Any] = field(default_factory=dict)
    # After the challenger is judged on the holdout, the registered model is the same spec
    # refitted on training + holdout rows (holdout.refit); see defs/training/challenger.py.
    refit: bool = False
    # "point": promote when the challenger's holdout figure beats the champion's;
    # "not_credibly_worse": promote unless a paired bootstrap of the holdout says the
    # challenger is worse with probability >= promotion_confidence (ml/paired_bootstrap.py).
    promotion_rule: str = "point"
    promotion_confidence: float = 0.95
    promotion_resamples: int = 200

    @property
    def registered_name(self) -> str:
        """Name of the model in the MLflow registry."""
        return f"cx_{self.name}"

    def select_features(self, columns: list[str]) -> list[str]:
        """Columns matching ``include`` globs, minus ``exclude`` globs and the target, in order."""
        selected = [
            column
            for column in columns
            if any(fnmatch.fnmatchcase(column, pattern) for pattern in self.include)
            and not any(fnmatch.fnmatchcase(column, pattern) for pattern in self.exclude)
            and column != self.target
        ]
        if not selected:
            raise ModelSpecError(
                f"{self.source or self.name}: features.include {list(self.include)} "
                f"matches none of the available columns {columns[:20]}"
            )
        return selected

    def is_better(self, challenger: float, champion: float) -> bool:
        """Whether ``challenger`` beats ``champion`` by more than ``min_improvement``."""
        improvement = (
            challenger - champion if self.direction == "maximize" else champion - challenger
        )
        return improvement > self.min_improvement


def models_dir() -> Path:
    """Folder of the model specs (``CX_MODELS_DIR``, default ``models/`` of the checkout)."""
    configured = os.environ.get("CX_MODELS_DIR")
    if configured:
        return Path(configured).resolve()
    return Path(__file__).resolve().parents[2] / "models"


def _location(error: jsonschema.ValidationError) -> str:
    return ".".join(str(part) for part in error.absolute_path) or "(top level)"


def parse_spec(document: Any, *, source: Path | None = None) -> ModelSpec:
    """Validate a parsed YAML document and return the :class:`ModelSpec` it declares."""
    where = str(source) if source else "model spec"
    if not isinstance(document, dict):
        raise ModelSpecError(
            f"{where}: expected a mapping of fields, got {type(document).__name__}"
        )
    errors = sorted(
        jsonschema.Draft202012Validator(_SCHEMA).iter_errors(document),
        key=lambda error: list(error.absolute_path),
    )
    if errors:
        details = "; ".join(f"{_location(error)}: {error.message}" for error in errors)
        raise ModelSpecError(f"{where}: {details}")
    kind = document["kind"]
    estimator = document["estimator"]
    logistic = LOGISTIC_META_LEARNERS.get(estimator.get("meta_learner", ""))
    if kind == "uplift" and logistic is not None and estimator["class"] != logistic:
        raise ModelSpecError(
            f"{where}: estimator.meta_learner {estimator['meta_learner']!r} needs "
            f"estimator.class {logistic!r}, not {estimator['class']!r}"
        )
    if kind in CLASSIFIER_KINDS and logistic is None and estimator["class"] not in CLASSIFIERS:
        raise ModelSpecError(
            f"{where}: estimator.class {estimator['class']!r} is not supported for kind {kind!r}; "
            f"use one of {list(CLASSIFIERS)}"
        )
    if kind == "uplift" and "meta_learner" not in estimator:
        raise ModelSpecError(
            f"{where}: estimator.meta_learner is required for an uplift model; "
            f"use one of {list(META_LEARNERS)}"
        )
    metric = document["metric"]
    natural = METRIC_DIRECTIONS[metric["name"]]
    direction = metric.get("direction", natural)
    if direction != natural:
        raise ModelSpecError(
            f"{where}: metric.direction {direction!r} contradicts {metric['name']!r}, "
            f"which is better when {natural}d"
        )
    if source is not None and source.stem != document["name"]:
        raise ModelSpecError(f"{where}: name {document['name']!r} must match the file name")
    features = document["features"]
    holdout = document.get("holdout", {})
    return ModelSpec(
        name=document["name"],
        kind=kind,
        description=document["description"],
        target=document["target"],
        include=tuple(features["include"]),
        exclude=tuple(features.get("exclude", ())),
        categorical=tuple(features.get("categorical", ())),
        estimator_class=estimator["class"],
        estimator_params=dict(estimator.get("params", {})),
        calibration=estimator.get("calibration", "none"),
        calibration_folds=int(estimator.get("calibration_folds", 3)),
        min_class_examples=int(estimator.get("min_class_examples", DEFAULT_MIN_CLASS_EXAMPLES)),
        meta_learner=estimator.get("meta_learner"),
        max_training_rows=estimator.get("max_training_rows"),
        holdout_fraction=float(holdout.get("fraction", 0.25)),
        holdout_days=int(holdout.get("days", 90)),
        metric=metric["name"],
        direction=direction,
        min_improvement=float(document.get("promotion", {}).get("min_improvement", 0.0)),
        source=source,
        estimator_options=dict(estimator.get("options", {})),
        refit=bool(holdout.get("refit", False)),
        promotion_rule=str(document.get("promotion", {}).get("rule", "point")),
        promotion_confidence=float(document.get("promotion", {}).get("confidence", 0.95)),
        promotion_resamples=int(document.get("promotion", {}).get("resamples", 200)),
    )


def load_spec(name_or_path: str | Path, *, directory: Path | None = None) -> ModelSpec:
    """Load ``models/<name>.yaml`` (or an explicit path) and validate it."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = (directory or models_dir()) / f"{name_or_path}.yaml"
    if not path.exists():
        raise ModelSpecError(f"Model spec {path} does not exist")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ModelSpecError(f"{path}: not valid YAML: {error}") from error
    return parse_spec(document, source=path)


def load_specs(directory: Path | None = None) -> dict[str, ModelSpec]:
    """Every spec in the models folder, by name."""
    folder = directory or models_dir()
    if not folder.is_dir():
        raise ModelSpecError(f"Model spec folder {folder} does not exist")
    specs = {}
    for path in sorted(folder.glob("*.yaml")):
        spec = load_spec(path)
        specs[spec.name] = spec
    return specs
