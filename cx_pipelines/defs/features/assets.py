"""Feature assets: KPIs, RFM summary, segments, KPI clusters, purchase patterns, opportunities.

Each asset wires a plain function from ``cx_pipelines.features`` or ``cx_pipelines.ml``;
upstream warehouse tables arrive as DataFrames through the warehouse IO manager.
The as-of date defaults to the end of the day of the latest transaction (the synthetic
world ends 2026-09-30, CDNOW in June 1998); set ``as_of`` in the run config to pin it.
"""

from typing import Literal

import dagster as dg
import pandas as pd

from cx_pipelines.features import account_kpis as account_kpis_module
from cx_pipelines.features import customer_kpis as customer_kpis_module
from cx_pipelines.features import purchase_patterns, segments
from cx_pipelines.features.observation import observation_end
from cx_pipelines.ml import clusters, opportunities, rfm

GROUP = "features"
TABLE_KINDS = {"pandas", "python"}
PREVIEW_ROWS = 20


class AsOfConfig(dg.Config):
    """When the observation window ends; None = the end of the latest transaction's day."""

    as_of: str | None = None


class RfmConfig(AsOfConfig):
    """RFM summary options: the as-of date and the time unit of recency and T ("D" or "W")."""

    time_unit: Literal["D", "W"] = "W"


class ClusterConfig(dg.Config):
    """k range searched by silhouette, and the seed of sampling and k-means."""

    k_min: int = 3
    k_max: int = 8
    random_state: int = 0


class AssociationConfig(dg.Config):
    """Basket unit ("customer_month" or "customer") and the minimum support kept."""

    basket: Literal["customer_month", "customer"] = "customer_month"
    min_support: float = 0.0


class TrendConfig(AsOfConfig):
    """Number of equal periods for the slope, and the growth above which a category grows."""

    periods: int = 12
    threshold: float = 0.1


class OpportunityConfig(dg.Config):
    """How many opportunities per customer, and the least peer adoption worth offering."""

    top: int = 3
    min_score: float = 0.2


def _markdown(frame: pd.DataFrame, *, rows: int = PREVIEW_ROWS) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False, floatfmt=".3g"))


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def customer_kpis(
    config: AsOfConfig,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    interactions: pd.DataFrame,
    inbound_events: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output:
    """Per customer: recency, frequency, spend mix, trend, holdings, balances, arrears, contacts."""
    frame = customer_kpis_module.customer_kpis(
        customers,
        accounts,
        transactions,
        interactions,
        inbound_events,
        offer_history,
        as_of=config.as_of,
    )
    spending = int((frame["transaction_count"] > 0).sum())
    return dg.Output(
        frame,
        metadata={
            "as_of": str(frame["as_of"].iloc[0]) if len(frame) else "",
            "customers_with_spend": spending,
            "customers_without_spend": len(frame) - spending,
        },
    )


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def account_kpis(
    config: AsOfConfig,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    inbound_events: pd.DataFrame,
) -> dg.Output:
    """Per account: balance, utilisation, delinquency bucket, spend, recency, late payments."""
    frame = account_kpis_module.account_kpis(
        accounts, transactions, inbound_events, as_of=config.as_of
    )
    buckets = (
        frame["delinquency_bucket"]
        .value_counts()
        .reindex(account_kpis_module.DELINQUENCY_BUCKETS, fill_value=0)
    )
    return dg.Output(
        frame,
        metadata={
            "delinquency_buckets": _markdown(
                buckets.rename_axis("bucket").reset_index(name="accounts")
            ),
        },
    )


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def rfm_summary(config: RfmConfig, transactions: pd.DataFrame) -> dg.Output:
    """BTYD summary per customer: repeat purchase days, recency, T, mean repeat spend."""
    end = observation_end(transactions, as_of=config.as_of)
    last_day = (end - pd.Timedelta(days=1)).normalize()  # rfm counts whole days up to this one
    frame = rfm.rfm_summary(
        transactions, observation_period_end=last_day, time_unit=config.time_unit
    )
    return dg.Output(
        frame,
        metadata={
            "observation_period_end": str(last_day.date()),
            "time_unit": config.time_unit,
            "repeat_buyers": int((frame["frequency"] > 0).sum()),
        },
    )


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def customer_segments(customer_kpis: pd.DataFrame) -> dg.Output:
    """Rule-based customer segment (first matching rule), its reason, and RFM quintile scores."""
    frame = segments.customer_segments(customer_kpis)
    counts = frame["segment"].value_counts()
    rules = pd.DataFrame(
        {
            "order": range(1, len(segments.SEGMENT_RULES) + 1),
            "segment": [rule.name for rule in segments.SEGMENT_RULES],
            "rule": [rule.description for rule in segments.SEGMENT_RULES],
            "customers": [int(counts.get(rule.name, 0)) for rule in segments.SEGMENT_RULES],
        }
    )
    return dg.Output(frame, metadata={"segments": _markdown(rules)})


@dg.asset(group_name=GROUP, kinds={"scikit-learn", "pandas"})
def kpi_clusters(config: ClusterConfig, customer_kpis: pd.DataFrame) -> dg.Output:
    """KPI cluster per customer: scaled KPIs, k by silhouette, each cluster profiled and named."""
    result = clusters.cluster_kpis(
        customer_kpis, k_range=(config.k_min, config.k_max), random_state=config.random_state
    )
    heatmap = clusters.profile_heatmap_png(result.standardised_profile)
    silhouette = pd.DataFrame(
        {"k": list(result.silhouette_by_k), "silhouette": list(result.silhouette_by_k.values())}
    )
    return dg.Output(
        result.assignments,
        metadata={
            "k": result.k,
            "k_criterion": f"highest silhouette for k in {config.k_min}..{config.k_max} "
            f"on a seeded sample (random_state={config.random_state})",
            "scaling": "log1p of money, counts, recency and tenure; z-scores clipped to +-5; "
            "category spend shares weighted 1/sqrt(categories)",
            "silhouette_by_k": _markdown(silhouette),
            "cluster_profiles": _markdown(result.profile),
            "cluster_profile_plot": dg.MetadataValue.md(
                clusters.png_markdown(heatmap, alt="standardised mean KPIs per cluster")
            ),
            "features": dg.MetadataValue.json(list(result.standardised_profile.columns)),
        },
    )


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def category_associations(config: AssociationConfig, transactions: pd.DataFrame) -> dg.Output:
    """Spending categories bought together: support, confidence and lift per ordered pair."""
    frame = purchase_patterns.category_associations(
        transactions, basket=config.basket, min_support=config.min_support
    )
    return dg.Output(
        frame,
        metadata={
            "basket": config.basket,
            "baskets": int(frame["baskets"].iloc[0]) if len(frame) else 0,
        },
    )


@dg.asset(group_name=GROUP, kinds=TABLE_KINDS)
def category_trends(config: TrendConfig, transactions: pd.DataFrame) -> dg.Output:
    """Per spending category: growth between halves, slope, and growing/stable/shrinking."""
    frame = purchase_patterns.category_trends(
        transactions, as_of=config.as_of, periods=config.periods, threshold=config.threshold
    )
    labels = frame.groupby("trend")["merchant_category"].agg(lambda names: ", ".join(names))
    return dg.Output(
        frame, metadata={f"{label}_categories": names for label, names in labels.items()}
    )


@dg.asset(group_name=GROUP, kinds={"scikit-learn", "pandas"})
def spending_opportunities(
    config: OpportunityConfig, customer_kpis: pd.DataFrame, kpi_clusters: pd.DataFrame
) -> dg.Output:
    """Per customer: top categories its KPI cluster buys and it does not yet, with a score."""
    frame = opportunities.spending_opportunities(
        customer_kpis, kpi_clusters, top=config.top, min_score=config.min_score
    )
    top_categories = frame.loc[frame["rank"] == 1, "merchant_category"].value_counts()
    return dg.Output(
        frame,
        metadata={
            "customers_with_an_opportunity": int(frame["customer_id"].nunique()),
            "top_opportunities": _markdown(
                top_categories.rename_axis("merchant_category").reset_index(name="customers")
            ),
        },
    )


FEATURE_ASSETS = [
    customer_kpis,
    account_kpis,
    rfm_summary,
    customer_segments,
    kpi_clusters,
    category_associations,
    category_trends,
    spending_opportunities,
]
