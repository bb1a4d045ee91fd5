"""The inbox sensor: a new result file in ``$CX_HOME/inbox/`` requests a run of the results.

The cursor is the set of file fingerprints (name, size, modification time) already seen,
limited to files still in the inbox, so it stays small as files move to ``processed/``.
A file that replaces an earlier one under the same name has a new fingerprint and is seen
anew. The run itself reads every file waiting when it starts; files are moved out of the
inbox only after their rows are committed, so a failed run leaves them in place for the
next run (or a manual ``cx materialize interaction_results``).
"""

import hashlib
import json

import dagster as dg

from cx_pipelines.feedback import RESULTS_TABLE, pending_files
from cx_pipelines.feedback.processing import QUARANTINE_TABLE

interaction_results_job = dg.define_asset_job(
    "interaction_results_job",
    selection=dg.AssetSelection.assets(RESULTS_TABLE, QUARANTINE_TABLE, "strategy_performance"),
    description="Match the results waiting in the inbox to their decisions; report performance.",
)

SENSOR_RUN_CONFIG = {"ops": {"interaction_results": {"config": {"include_source_table": False}}}}
FILES_TAG = "cx/inbox_files"


def seen_fingerprints(cursor: str | None) -> set[str]:
    return set(json.loads(cursor)) if cursor else set()


@dg.sensor(
    job=interaction_results_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a run of interaction_results when new result files reach the inbox.",
)
def inbox_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    waiting = pending_files()
    seen = seen_fingerprints(context.cursor)
    new = [file for file in waiting if file.fingerprint not in seen]
    present = {file.fingerprint for file in waiting}
    cursor = json.dumps(sorted((seen & present) | {file.fingerprint for file in new}))
    if not new:
        return dg.SensorResult(
            skip_reason=f"no new result files ({len(waiting)} waiting, already requested)",
            cursor=cursor,
        )
    fingerprints = sorted(file.fingerprint for file in new)
    run_key = hashlib.sha256("\n".join(fingerprints).encode()).hexdigest()[:20]
    names = ", ".join(file.name for file in new)
    context.log.info(f"{len(new)} new result file(s): {names}")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=run_key,
                run_config=SENSOR_RUN_CONFIG,
                tags={FILES_TAG: names[:4000]},
            )
        ],
        cursor=cursor,
    )
