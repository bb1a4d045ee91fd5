"""``customer_intelligence_record``: the treatment part of the intelligence strategy over
every customer and every channel (SPEC S5), with the champion models' scores.

One row per customer × channel: the ranked treatments with their arbitration terms
(JSON), the top treatment and its offer type, the reason trace, the strategy hash and the
model versions. The decision service answers the same record for one customer
(:mod:`cx_pipelines.intelligence` is the code both run).
"""

import dagster as dg
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.decisioning.simulate import engine_inputs, model_versions
from cx_pipelines.defs.decisioning.assets import (
    GROUP,
    StrategyRepository,
    optional_tables,
    require_validated,
    restore_ids,
    upstream_keys,
)


class IntelligenceSettings(dg.Config):
    """Which strategy and event the population's intelligence record runs."""

    strategy: str = "next_best_action.yaml"
    event: str = "periodic_review"


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "parquet"},
    deps=[dg.AssetKey("strategy_catalog"), *upstream_keys()],
)
def customer_intelligence_record(
    context: dg.AssetExecutionContext, config: IntelligenceSettings, strategies: StrategyRepository
) -> dg.Output[pd.DataFrame]:
    """Per customer and channel: the ranked treatments, their arbitration terms and trace."""
    from cx_pipelines.engine import load_strategy
    from cx_pipelines.intelligence import decide_population

    path = strategies.folder() / config.strategy
    strategy = load_strategy(path)
    require_validated(strategy, path)
    customers = warehouse.read_table("customers")
    tables = optional_tables()
    customer_inputs, account_inputs = engine_inputs(
        strategy, customers=customers, accounts=warehouse.read_table("accounts"), tables=tables
    )
    versions = model_versions(tables.get("customer_scores"))
    records = decide_population(
        strategy,
        event=config.event,
        customers=customer_inputs,
        accounts=account_inputs,
        model_versions=versions,
    )
    records = restore_ids(records, customers["customer_id"], "customer_id")
    top = records.groupby("channel")["treatment"].agg(
        lambda s: s.fillna("(none)").value_counts().head(5).to_dict()
    )
    context.log.info(
        f"{strategy.name} {strategy.content_hash}: {len(customer_inputs)} customers x "
        f"{len(strategy.channels)} channels = {len(records)} records"
    )
    return dg.Output(
        records,
        metadata={
            "strategy": strategy.name,
            "strategy_hash": strategy.content_hash,
            "event": config.event,
            "customers": len(customer_inputs),
            "channels": ", ".join(strategy.channels),
            "records": len(records),
            "model_versions": dg.MetadataValue.json(versions),
            "top_treatment_by_channel": dg.MetadataValue.json(
                {str(k): {str(t): int(n) for t, n in v.items()} for k, v in top.items()}
            ),
            "without_treatment": int(records["treatment"].isna().sum()),
        },
    )


@dg.asset_check(asset=customer_intelligence_record)
def every_customer_has_a_record_per_channel(
    customer_intelligence_record: pd.DataFrame,
) -> dg.AssetCheckResult:
    """Exactly one record per customer and channel, every one with a test group and trace."""
    frame = customer_intelligence_record
    duplicated = int(frame.duplicated(["customer_id", "channel"]).sum())
    per_customer = frame.groupby("customer_id")["channel"].nunique()
    channels = int(frame["channel"].nunique())
    uneven = int((per_customer != channels).sum())
    missing = int(frame["test_group"].isna().sum() + frame["trace"].isna().sum())
    return dg.AssetCheckResult(
        passed=duplicated == 0 and uneven == 0 and missing == 0,
        metadata={
            "records": len(frame),
            "duplicated": duplicated,
            "customers_missing_a_channel": uneven,
            "without_group_or_trace": missing,
        },
    )
