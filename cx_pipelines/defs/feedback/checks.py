"""Checks of the feedback domain: nothing lost, one outcome per contact, readable inbox files."""

import dagster as dg
import pyarrow.parquet as pq

from cx_pipelines import warehouse
from cx_pipelines.feedback import QUARANTINE_TABLE, RESULTS_TABLE

COUNTS = ("rows_in", "rows_matched", "rows_quarantined", "rows_duplicate")


def _latest_metadata(context: dg.AssetCheckExecutionContext) -> dict[str, object]:
    event = context.instance.get_latest_materialization_event(dg.AssetKey(RESULTS_TABLE))
    if event is None or event.asset_materialization is None:
        return {}
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


@dg.asset_check(
    asset=RESULTS_TABLE,
    blocking=True,
    description=(
        "Rows in = matched + quarantined + duplicates in the latest run, the table holds what "
        "the run reported, and the quarantine holds this run's quarantined rows."
    ),
)
def results_reconcile_with_inputs(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    metadata = _latest_metadata(context)
    missing = [name for name in (*COUNTS, "dagster/row_count") if name not in metadata]
    if missing:
        return dg.AssetCheckResult(passed=False, description=f"metadata lacks {missing}")
    rows_in, matched, quarantined, duplicates = (int(metadata[name]) for name in COUNTS)
    recorded = warehouse.table_row_count(RESULTS_TABLE)
    quarantine = (
        pq.read_table(warehouse.table_path(QUARANTINE_TABLE), columns=["run_id"])
        .column("run_id")
        .to_pylist()
    )
    quarantined_now = sum(1 for run_id in quarantine if run_id == context.run.run_id)
    problems = []
    if rows_in != matched + quarantined + duplicates:
        problems.append(
            f"{rows_in} rows in but {matched} matched + {quarantined} quarantined + "
            f"{duplicates} duplicates"
        )
    if recorded != int(metadata["dagster/row_count"]):
        problems.append(
            f"table holds {recorded} rows, the run reported {metadata['dagster/row_count']}"
        )
    if quarantined_now != quarantined:
        problems.append(
            f"quarantine holds {quarantined_now} rows of this run, reported {quarantined}"
        )
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "rows_in": rows_in,
            "rows_matched": matched,
            "rows_quarantined": quarantined,
            "rows_duplicate": duplicates,
            "results_recorded": recorded,
        },
        description="; ".join(problems) or f"{rows_in} = {matched} + {quarantined} + {duplicates}",
    )


@dg.asset_check(
    asset=RESULTS_TABLE,
    blocking=True,
    description="One outcome per contact: no contact_id occurs twice in interaction_results.",
)
def contact_id_is_unique() -> dg.AssetCheckResult:
    contacts = pq.read_table(warehouse.table_path(RESULTS_TABLE), columns=["contact_id"])
    ids = contacts.column("contact_id").to_pandas()
    repeated = int(ids.duplicated().sum())
    return dg.AssetCheckResult(
        passed=repeated == 0,
        metadata={"repeated_contact_ids": repeated, "contacts": len(ids)},
    )


@dg.asset_check(
    asset=RESULTS_TABLE,
    description="Every inbox file of the latest run could be read (else it is in inbox/rejected/).",
)
def inbox_files_are_readable(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    rejected = _latest_metadata(context).get("rejected_files") or {}
    return dg.AssetCheckResult(
        passed=not rejected,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"rejected_files": dg.MetadataValue.json(rejected)},
        description=f"{len(rejected)} file(s) rejected" if rejected else "every file was read",
    )


FEEDBACK_CHECKS = [results_reconcile_with_inputs, contact_id_is_unique, inbox_files_are_readable]
