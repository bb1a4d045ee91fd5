"""Blocking gates: a source table with too many quarantined rows stops what depends on it."""

import dagster as dg
import pyarrow.parquet as pq

from cx_pipelines import privacy, warehouse
from cx_pipelines.defs.sources.assets import SOURCE_TABLE_DEPENDENCIES
from cx_pipelines.defs.sources.resources import QuarantinePolicy
from cx_pipelines.ingestion import quarantined_count, quarantined_for
from cx_pipelines.ingestion.quarantine import part_path


def _failures_by_rule(table: str) -> dict[str, int]:
    path = part_path(table)
    if not path.exists():
        return {}
    rules = pq.read_table(path, columns=["failed_rule"]).column("failed_rule").to_pandas()
    return {str(rule): int(count) for rule, count in rules.value_counts().items()}


def build_quarantine_rate_check(table: str) -> dg.AssetChecksDefinition:
    """``<table>_quarantine_rate_is_acceptable``: quarantined / read within the threshold."""

    @dg.asset_check(
        asset=table,
        name=f"{table}_quarantine_rate_is_acceptable",
        blocking=True,
        description=(
            f"At most the allowed share (default 5 %, CX_QUARANTINE_THRESHOLD) of {table} rows "
            "is quarantined; otherwise assets downstream of it do not run."
        ),
    )
    def _check(quarantine_policy: QuarantinePolicy) -> dg.AssetCheckResult:
        threshold = quarantine_policy.threshold()
        accepted = warehouse.table_row_count(table)
        quarantined = quarantined_count(table)
        read = accepted + quarantined
        rate = quarantined / read if read else 0.0
        metadata = {
            "quarantine_rate": dg.MetadataValue.float(rate),
            "threshold": dg.MetadataValue.float(threshold),
            "rows_read": dg.MetadataValue.int(read),
            "rows_quarantined": dg.MetadataValue.int(quarantined),
            "failures_by_rule": dg.MetadataValue.json(_failures_by_rule(table)),
        }
        if quarantined:
            sample = quarantined_for(table).head(5)[["source_key", "failed_rule", "raw_row"]]
            # Parts written before masking existed may still hold personal values.
            sample["raw_row"] = sample["raw_row"].map(privacy.mask_json)
            metadata["sample"] = dg.MetadataValue.md(sample.to_markdown(index=False))
        return dg.AssetCheckResult(
            passed=rate <= threshold,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=f"{rate:.2%} of {read:,} rows quarantined (threshold {threshold:.2%})",
        )

    return _check


quarantine_rate_checks = [build_quarantine_rate_check(table) for table in SOURCE_TABLE_DEPENDENCIES]
