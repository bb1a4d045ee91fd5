"""Feedback assets: interaction results matched to the decisions that caused them.

``interaction_results`` writes its two tables itself (under a lock, accumulating across runs,
see :mod:`cx_pipelines.feedback.processing`) and reports the counts that prove nothing was
lost; its blocking check ``results_reconcile_with_inputs`` holds them to that.
"""

import json

import dagster as dg
import pandas as pd

from cx_pipelines import config as platform_config
from cx_pipelines import warehouse
from cx_pipelines.defs.training.challenger import images_markdown
from cx_pipelines.defs.warehouse_io import PREVIEW_ROWS, table_metadata
from cx_pipelines.feedback import (
    QUARANTINE_TABLE,
    RESULTS_TABLE,
    FeedbackRun,
    load_decision_log,
    process_results,
)
from cx_pipelines.feedback.experiments import (
    champion_challenger_tests,
    experiment_profit_tests,
)
from cx_pipelines.feedback.performance import ALL, CHAMPION, performance_cube, with_dimensions
from cx_pipelines.feedback.plots import cumulative_gains_plot, lift_by_test_group_plot
from cx_pipelines.feedback.results import MATCHING_REASONS
from cx_pipelines.feedback.sequential import experiment_horizon_tests
from cx_pipelines.ingestion import QUARANTINE_TABLE as QUARANTINED_ROWS
from cx_pipelines.ingestion.expectations import rules_markdown

GROUP = "feedback"
SOURCE_TABLE = "offer_responses"
DECISION_LOG_ASSET = "campaign_exports"
"""Writes the batch decision log (``exports/*/*/decisions.parquet``) that results match."""


class InteractionResultsConfig(dg.Config):
    """What one run of ``interaction_results`` reads besides the inbox."""

    include_source_table: bool = True
    """Also match the accepted rows of ``offer_responses`` (its rows already recorded count
    as duplicates); the inbox sensor's runs leave it out."""


def _reasons_markdown() -> str:
    matching = "\n".join(f"- `{reason}`" for reason in MATCHING_REASONS)
    return (
        "Rows are validated with the `offer_responses` contract (Great Expectations):\n\n"
        f"{rules_markdown(SOURCE_TABLE)}\n\nthen matched to their decision; other reasons:\n\n"
        f"{matching}"
    )


def _inputs_markdown(run: FeedbackRun) -> str:
    rows = [
        {
            "input": counts.source,
            "rows": counts.rows,
            "matched": counts.matched,
            "duplicates": counts.duplicates,
            "quarantined": counts.quarantined,
            "sha256": counts.checksum[:12],
        }
        for counts in run.update.inputs
    ]
    return pd.DataFrame(rows).to_markdown(index=False) if rows else "(no inputs)"


def results_metadata(run: FeedbackRun) -> dict[str, dg.MetadataValue]:
    """Counts that prove nothing was lost (rows in = matched + quarantined + duplicates)."""
    update = run.update
    metadata = table_metadata(update.results.tail(PREVIEW_ROWS))  # the latest outcomes
    metadata.update(
        {
            "dagster/row_count": dg.MetadataValue.int(len(update.results)),
            "rows_in": dg.MetadataValue.int(update.total("rows")),
            "rows_matched": dg.MetadataValue.int(update.total("matched")),
            "rows_quarantined": dg.MetadataValue.int(update.total("quarantined")),
            "rows_duplicate": dg.MetadataValue.int(update.total("duplicates")),
            "quarantine_reasons": dg.MetadataValue.json(update.reasons),
            "inputs": dg.MetadataValue.md(_inputs_markdown(run)),
            "processed_files": dg.MetadataValue.json(run.processed_files),
            "rejected_files": dg.MetadataValue.json(run.rejected_files),
            "decisions_known": dg.MetadataValue.int(len(run.decision_log.decisions)),
            "decision_files": dg.MetadataValue.int(len(run.decision_log.files)),
            "path": dg.MetadataValue.path(str(warehouse.table_path(RESULTS_TABLE))),
        }
    )
    return metadata


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            RESULTS_TABLE,
            deps=[SOURCE_TABLE, DECISION_LOG_ASSET],
            description=(
                "Outcomes of decided contacts (inbox files, offer_responses) matched to their "
                "decision; offer_history's columns plus the decision's, accumulated across runs."
            ),
            group_name=GROUP,
            kinds={"pandas", "parquet"},
            metadata={"rules": dg.MetadataValue.md(_reasons_markdown())},
        ),
        dg.AssetSpec(
            QUARANTINE_TABLE,
            description=(
                "Result rows that matched no decision or were malformed: input, row number, "
                "reason, the row's result columns (JSON), run id; accumulated across runs."
            ),
            group_name=GROUP,
            kinds={"parquet"},
        ),
    ],
)
def interaction_results(
    context: dg.AssetExecutionContext, config: InteractionResultsConfig
) -> tuple[dg.MaterializeResult, dg.MaterializeResult]:
    """Validate, match, de-duplicate and quarantine the interaction results waiting in the inbox."""
    run = process_results(
        run_id=context.run.run_id,
        include_source_table=config.include_source_table,
        log=context.log.info,
    )
    update = run.update
    context.log.info(
        f"{update.total('rows'):,} rows in = {update.total('matched'):,} matched + "
        f"{update.total('quarantined'):,} quarantined + {update.total('duplicates'):,} "
        f"duplicates; {len(update.results):,} results recorded"
    )
    for name, reason in run.rejected_files.items():
        context.log.warning(f"{name} moved to inbox/rejected/: {reason}")
    context.log_event(
        dg.AssetMaterialization(
            asset_key=QUARANTINED_ROWS,
            description=f"Quarantined rows of {RESULTS_TABLE} replaced by run {context.run.run_id}",
            metadata={
                "dagster/row_count": dg.MetadataValue.int(run.quarantined_rows_total),
                "source_table": dg.MetadataValue.text(RESULTS_TABLE),
                "rows_from_source_table": dg.MetadataValue.int(len(update.quarantine)),
            },
        )
    )
    return (
        dg.MaterializeResult(asset_key=RESULTS_TABLE, metadata=results_metadata(run)),
        dg.MaterializeResult(
            asset_key=QUARANTINE_TABLE,
            metadata={
                **table_metadata(update.quarantine.tail(PREVIEW_ROWS)),
                "dagster/row_count": dg.MetadataValue.int(len(update.quarantine)),
                "quarantined_this_run": dg.MetadataValue.int(update.total("quarantined")),
                "path": dg.MetadataValue.path(str(warehouse.table_path(QUARANTINE_TABLE))),
            },
        ),
    )


class StrategyPerformanceConfig(dg.Config):
    """Costs and the comparison behind ``strategy_performance``."""

    contact_cost: dict[str, float] = {}
    """Cost of one treated contact per campaign id (profit = incremental revenue − cost); a
    campaign not named here costs what its file's ``cost_per_contact`` says."""
    compare_by: str = "test_group"
    """The dimension whose values compete (``test_group``, or ``strategy_hash``)."""
    champion: str = CHAMPION
    """The value of ``compare_by`` the others are compared with."""
    confidence: float = 0.95
    alpha: float = 0.05
    power: float = 0.8


def contact_costs(overrides: dict[str, float]) -> dict[str, float]:
    """Cost per treated contact by campaign id: the validated campaign files', then overrides."""
    costs: dict[str, float] = {}
    if warehouse.table_exists("campaign_catalog"):
        catalog = warehouse.read_table("campaign_catalog")
        valid = catalog[catalog["valid"].astype(bool)]
        cost = valid["cost_per_contact"].astype(float)
        costs = dict(zip(valid["campaign_id"], cost, strict=True))
    return costs | dict(overrides)


def _headline(cube: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    total = cube[cube["grain"] == ALL]
    if total.empty:
        return {}
    row = total.iloc[0]

    def figure(value: object) -> float | None:
        return None if pd.isna(value) else round(float(value), 6)

    return {
        "contacts": dg.MetadataValue.int(int(row["contacts"])),
        "treated_rate": dg.MetadataValue.float(figure(row["treated_rate"])),
        "control_rate": dg.MetadataValue.float(figure(row["control_rate"])),
        "incremental_response_rate": dg.MetadataValue.json(
            {
                "estimate": figure(row["incremental_response_rate"]),
                "low": figure(row["incremental_response_rate_low"]),
                "high": figure(row["incremental_response_rate_high"]),
            }
        ),
        "incremental_profit": dg.MetadataValue.json(
            {
                "estimate": figure(row["incremental_profit"]),
                "low": figure(row["incremental_profit_low"]),
                "high": figure(row["incremental_profit_high"]),
            }
        ),
    }


@dg.asset(
    ins={"interaction_results": dg.AssetIn(RESULTS_TABLE)},
    deps=["customer_decisions", "campaign_catalog", DECISION_LOG_ASSET],
    group_name=GROUP,
    kinds={"pandas", "parquet", "duckdb"},
)
def strategy_performance(
    context: dg.AssetExecutionContext,
    config: StrategyPerformanceConfig,
    interaction_results: pd.DataFrame,
) -> dg.Output:
    """Segment × test group × campaign × channel × strategy version cube of lift over control."""
    customer_decisions = (
        warehouse.read_table("customer_decisions", columns=["customer_id", "segment", "test_group"])
        if warehouse.table_exists("customer_decisions")
        else None
    )
    frame = with_dimensions(interaction_results, load_decision_log().decisions, customer_decisions)
    costs = contact_costs(config.contact_cost)
    cube = performance_cube(frame, contact_cost=costs, confidence=config.confidence)
    tests = champion_challenger_tests(
        frame,
        group_column=config.compare_by,
        champion=config.champion,
        alpha=config.alpha,
        power=config.power,
    )
    profit_tests = experiment_profit_tests(
        interaction_results, platform_config.exports_dir(), alpha=config.alpha, power=config.power
    )
    context.log.info(
        f"{len(frame):,} outcomes in {len(cube):,} cube cells; "
        f"{int(tests['significant'].sum()) if len(tests) else 0} significant challenger results"
    )
    metadata = {
        **_headline(cube),
        "champion_vs_challenger": dg.MetadataValue.md(
            tests.to_markdown(index=False, floatfmt=".4g") if len(tests) else "(no challenger)"
        ),
        "contact_costs": dg.MetadataValue.json(costs),
    }
    if len(profit_tests):  # a live experiment on campaign targeting ran
        metadata["experiment_incremental_profit"] = dg.MetadataValue.md(
            profit_tests.to_markdown(index=False, floatfmt=".4g")
        )
        metadata["experiment_tests"] = dg.MetadataValue.json(
            json.loads(profit_tests.to_json(orient="records"))
        )
    looks = experiment_horizon_tests(
        interaction_results, platform_config.exports_dir(), alpha=config.alpha, power=config.power
    )
    if len(looks):  # an experiment that states its horizon: every look against its boundary
        metadata["experiment_sequential"] = dg.MetadataValue.md(
            looks.to_markdown(index=False, floatfmt=".4g")
        )
        metadata["experiment_looks"] = dg.MetadataValue.json(
            json.loads(looks.to_json(orient="records"))
        )
    if len(frame):
        metadata["plots"] = images_markdown(
            {
                "lift by test group": lift_by_test_group_plot(cube),
                "cumulative gains": cumulative_gains_plot(frame),
            }
        )
    return dg.Output(cube, metadata=metadata)
