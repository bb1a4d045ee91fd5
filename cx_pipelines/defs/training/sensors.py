"""Retraining on results: a sensor that asks for ``model_retraining`` once enough new
interaction results have arrived since the response models last trained.

It reads only the Dagster instance: the row count of every ``interaction_results``
materialisation (``dagster/row_count``, the whole table) and when ``propensity_models`` and
``uplift_model`` last materialised. New results = rows now − rows at the older of the two
trainings. At or above the threshold (``CX_RETRAIN_AFTER_RESULTS``, default 5,000) it
requests one run per state of the results (the run key names the results materialisation),
so a tick that sees the same results twice asks only once. The weekly schedule stays; either
way, a retrained model becomes champion only through its blocking promotion check.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import dagster as dg

RESULTS = dg.AssetKey("interaction_results")
RESPONSE_MODELS = (dg.AssetKey("propensity_models"), dg.AssetKey("uplift_model"))
THRESHOLD_VARIABLE = "CX_RETRAIN_AFTER_RESULTS"
DEFAULT_THRESHOLD = 5_000


class RetrainingSettingError(ValueError):
    """The retraining threshold in the environment is not a positive whole number."""


def results_threshold() -> int:
    """New results needed before the sensor asks for retraining (``CX_RETRAIN_AFTER_RESULTS``)."""
    text = os.environ.get(THRESHOLD_VARIABLE, str(DEFAULT_THRESHOLD))
    try:
        value = int(text)
    except ValueError as error:
        raise RetrainingSettingError(
            f"{THRESHOLD_VARIABLE}={text!r} is not a whole number of results"
        ) from error
    if value < 1:
        raise RetrainingSettingError(f"{THRESHOLD_VARIABLE} must be at least 1, got {value}")
    return value


@dataclass(frozen=True)
class ResultsSinceTraining:
    """How many interaction results the response models have not been trained with yet."""

    new_results: int
    total_results: int
    results_storage_id: int | None  # the latest interaction_results materialisation
    trained_storage_id: int | None  # the older of the response models' latest trainings


def _row_count(record: dg.EventLogRecord) -> int:
    materialization = record.asset_materialization
    entry = materialization.metadata.get("dagster/row_count") if materialization else None
    return int(entry.value) if entry is not None else 0


def results_since_training(instance: dg.DagsterInstance) -> ResultsSinceTraining:
    """Compare the latest results table with the one the last training run could have read."""
    latest = instance.fetch_materializations(RESULTS, limit=1).records
    if not latest:
        return ResultsSinceTraining(0, 0, None, None)
    total = _row_count(latest[0])
    trainings = [instance.fetch_materializations(key, limit=1).records for key in RESPONSE_MODELS]
    if not all(trainings):  # a response model never trained: every result is new to it
        return ResultsSinceTraining(total, total, latest[0].storage_id, None)
    trained = min(records[0].storage_id for records in trainings)
    before = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=RESULTS, before_storage_id=trained), limit=1
    ).records
    seen = _row_count(before[0]) if before else 0
    return ResultsSinceTraining(max(total - seen, 0), total, latest[0].storage_id, trained)


def retraining_request(
    instance: dg.DagsterInstance, *, threshold: int
) -> dg.RunRequest | dg.SkipReason:
    """A run request when at least ``threshold`` results are new to the response models."""
    state = results_since_training(instance)
    if state.results_storage_id is None:
        return dg.SkipReason("no interaction_results materialised yet")
    if state.new_results < threshold:
        return dg.SkipReason(
            f"{state.new_results:,} new interaction results since the last training "
            f"(threshold {threshold:,})"
        )
    return dg.RunRequest(
        run_key=f"interaction-results-{state.results_storage_id}",
        tags={"cx/new_interaction_results": str(state.new_results)},
    )


@dg.sensor(
    name="retrain_on_new_results",
    job_name="model_retraining",
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retrain the models once CX_RETRAIN_AFTER_RESULTS (default 5,000) new "
    "interaction results have arrived since the response models last trained; promotion "
    "still goes through the champion/challenger gate.",
)
def retrain_on_new_results(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    return retraining_request(context.instance, threshold=results_threshold())
