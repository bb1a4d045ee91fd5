"""One asset per source table: validated rows in the warehouse, failing rows in quarantine."""

import dagster as dg

from cx_pipelines import warehouse
from cx_pipelines.defs.sources.resources import SourceDatabase
from cx_pipelines.defs.warehouse_io import table_metadata
from cx_pipelines.ingestion import QUARANTINE_TABLE, IngestionReport, ingest_table
from cx_pipelines.ingestion.expectations import rules_markdown

GROUP = "sources"

SOURCE_TABLE_DEPENDENCIES: dict[str, list[str]] = {
    "customers": [],
    "accounts": ["customers"],
    "transactions": ["customers", "accounts"],
    "interactions": ["customers"],
    "inbound_events": ["customers", "accounts"],
    "offer_history": ["customers"],
    "offer_responses": [],
}
"""Each source table and the accepted tables its references are checked against."""

DESCRIPTIONS = {
    "customers": "Validated customers from the source system (type, region, age, income, email).",
    "accounts": "Validated accounts of accepted customers (product, status, balance, arrears).",
    "transactions": "Validated spending transactions on accepted accounts of their own customer.",
    "interactions": "Validated channel interactions of accepted customers.",
    "inbound_events": "Validated inbound events (cycle date, late payment, credit request...).",
    "offer_history": "Validated offer contacts and responses, control groups included.",
    "offer_responses": "Validated outcomes of exported contacts sent back by the acting systems.",
}


def ingestion_metadata(report: IngestionReport, *, source: str) -> dict[str, dg.MetadataValue]:
    """Counts that prove nothing was lost (read = accepted + quarantined), and the failures."""
    metadata = table_metadata(report.preview)
    metadata.update(
        {
            "dagster/row_count": dg.MetadataValue.int(report.rows_accepted),
            "rows_read": dg.MetadataValue.int(report.rows_read),
            "rows_accepted": dg.MetadataValue.int(report.rows_accepted),
            "rows_quarantined": dg.MetadataValue.int(report.rows_quarantined),
            "quarantine_rate": dg.MetadataValue.float(report.quarantine_rate),
            "failures_by_rule": dg.MetadataValue.json(report.failures_by_rule),
            "source": dg.MetadataValue.text(source),
            "path": dg.MetadataValue.path(str(warehouse.table_path(report.table))),
            "seconds": dg.MetadataValue.float(round(report.seconds, 3)),
        }
    )
    return metadata


def build_source_asset(table: str) -> dg.AssetsDefinition:
    """The ingestion asset of one source table, named like it."""

    @dg.asset(
        name=table,
        deps=SOURCE_TABLE_DEPENDENCIES[table],
        description=DESCRIPTIONS[table],
        group_name=GROUP,
        kinds={"sql", "pandas", "parquet"},
        metadata={"rules": dg.MetadataValue.md(rules_markdown(table))},
    )
    def _source_asset(
        context: dg.AssetExecutionContext, source_database: SourceDatabase
    ) -> dg.Output:
        report = ingest_table(
            table,
            url=source_database.resolved_url(),
            run_id=context.run.run_id,
            chunk_rows=source_database.chunk_rows,
            log=context.log.info,
        )
        context.log.info(
            f"{table}: {report.rows_read:,} read = {report.rows_accepted:,} accepted "
            f"+ {report.rows_quarantined:,} quarantined in {report.seconds:.1f} s"
        )
        context.log_event(
            dg.AssetMaterialization(
                asset_key=QUARANTINE_TABLE,
                description=f"Quarantined rows of {table} replaced by run {context.run.run_id}",
                metadata={
                    "dagster/row_count": dg.MetadataValue.int(report.quarantined_rows_total),
                    "source_table": dg.MetadataValue.text(table),
                    "rows_from_source_table": dg.MetadataValue.int(report.rows_quarantined),
                    "path": dg.MetadataValue.path(str(warehouse.table_path(QUARANTINE_TABLE))),
                },
            )
        )
        return dg.Output(
            None, metadata=ingestion_metadata(report, source=source_database.masked_url())
        )

    return _source_asset


source_assets = [build_source_asset(table) for table in SOURCE_TABLE_DEPENDENCIES]

quarantined_rows = dg.AssetSpec(
    QUARANTINE_TABLE,
    deps=list(SOURCE_TABLE_DEPENDENCIES),
    description=(
        "Source rows that failed a rule: table, key, first failed rule, raw row (JSON), run id; "
        "written by the source assets."
    ),
    group_name=GROUP,
    kinds={"parquet"},
)
