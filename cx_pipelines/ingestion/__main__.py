"""Ingest source tables without Dagster and print what happened (for timing and debugging).

    python -m cx_pipelines.ingestion [--url URL] [--chunk-rows N] [TABLE ...]

Writes the same warehouse tables and quarantine as the Dagster assets. The last line is one
JSON object of the figures.
"""

from __future__ import annotations

import argparse
import json
import time

from cx_pipelines import config, source_schema
from cx_pipelines.ingestion.pipeline import ingest_table
from cx_pipelines.ingestion.source import DEFAULT_CHUNK_ROWS, mask_url


def main(argv: list[str] | None = None) -> int:
    tables = [table.name for table in source_schema.SOURCE_TABLES]
    parser = argparse.ArgumentParser(prog="python -m cx_pipelines.ingestion")
    parser.add_argument("tables", nargs="*", help=f"any of {', '.join(tables)} (default: all)")
    parser.add_argument("--url", default=None, help="source URL (default: CX_SOURCE_URL)")
    parser.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    arguments = parser.parse_args(argv)
    unknown = sorted(set(arguments.tables) - set(tables))
    if unknown:
        parser.error(
            f"unknown source table(s) {', '.join(unknown)}; choose from {', '.join(tables)}"
        )
    url = arguments.url or config.source_url()
    started, cpu_started = time.perf_counter(), time.process_time()
    figures: dict[str, dict] = {}
    print(f"ingesting from {mask_url(url)} in chunks of {arguments.chunk_rows:,} rows")
    for table in arguments.tables or tables:
        report = ingest_table(
            table, url=url, run_id=f"cli-{int(time.time())}", chunk_rows=arguments.chunk_rows
        )
        figures[table] = {
            "rows_read": report.rows_read,
            "rows_accepted": report.rows_accepted,
            "rows_quarantined": report.rows_quarantined,
            "seconds": round(report.seconds, 2),
            "seconds_by_step": report.seconds_by_step,
        }
        print(
            f"{table:<15} {report.rows_read:>10,} read {report.rows_accepted:>10,} accepted "
            f"{report.rows_quarantined:>8,} quarantined {report.seconds:7.1f} s  "
            f"{report.failures_by_rule or ''}"
        )
    total = {
        "wall_seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
        "rows_read": sum(table["rows_read"] for table in figures.values()),
        "chunk_rows": arguments.chunk_rows,
    }
    print(json.dumps({"total": total, "tables": figures}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
