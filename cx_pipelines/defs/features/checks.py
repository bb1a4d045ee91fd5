"""Asset checks of the feature tables: keys unique, every customer covered, opportunities new."""

import dagster as dg
import pandas as pd


def _unique(frame: pd.DataFrame, column: str) -> dg.AssetCheckResult:
    duplicated = frame[column][frame[column].duplicated()]
    return dg.AssetCheckResult(
        passed=duplicated.empty,
        metadata={
            "duplicated_ids": len(duplicated),
            "examples": dg.MetadataValue.json(duplicated.head(5).tolist()),
        },
    )


@dg.asset_check(asset="customer_kpis", blocking=True)
def customer_id_is_unique(customer_kpis: pd.DataFrame) -> dg.AssetCheckResult:
    """customer_kpis has exactly one row per customer_id."""
    return _unique(customer_kpis, "customer_id")


@dg.asset_check(asset="account_kpis", blocking=True)
def account_id_is_unique(account_kpis: pd.DataFrame) -> dg.AssetCheckResult:
    """account_kpis has exactly one row per account_id."""
    return _unique(account_kpis, "account_id")


@dg.asset_check(
    asset="customer_segments", additional_ins={"customer_kpis": dg.AssetIn("customer_kpis")}
)
def every_customer_has_one_segment(
    customer_segments: pd.DataFrame, customer_kpis: pd.DataFrame
) -> dg.AssetCheckResult:
    """Each customer of customer_kpis appears once in customer_segments, with a segment."""
    expected = set(customer_kpis["customer_id"])
    counts = customer_segments["customer_id"].value_counts()
    missing = expected - set(counts.index)
    return dg.AssetCheckResult(
        passed=not missing
        and bool((counts == 1).all())
        and not customer_segments["segment"].isna().any(),
        metadata={
            "customers_without_segment": len(missing),
            "customers_with_several_rows": int((counts > 1).sum()),
        },
    )


@dg.asset_check(
    asset="kpi_clusters",
    blocking=True,
    additional_ins={"customer_kpis": dg.AssetIn("customer_kpis")},
)
def every_customer_has_a_cluster(
    kpi_clusters: pd.DataFrame, customer_kpis: pd.DataFrame
) -> dg.AssetCheckResult:
    """Each customer of customer_kpis has exactly one cluster with a name."""
    missing = set(customer_kpis["customer_id"]) - set(kpi_clusters["customer_id"])
    return dg.AssetCheckResult(
        passed=not missing
        and not kpi_clusters["customer_id"].duplicated().any()
        and not kpi_clusters["cluster_name"].isna().any(),
        metadata={"customers_without_cluster": len(missing)},
    )


@dg.asset_check(asset="kpi_clusters")
def cluster_names_are_unique(kpi_clusters: pd.DataFrame) -> dg.AssetCheckResult:
    """Each cluster id has one name and no two clusters share a name."""
    names = kpi_clusters[["cluster_id", "cluster_name"]].drop_duplicates()
    return dg.AssetCheckResult(
        passed=not names["cluster_id"].duplicated().any()
        and not names["cluster_name"].duplicated().any(),
        metadata={
            "clusters": dg.MetadataValue.json(
                dict(
                    zip(
                        names["cluster_id"].astype(int).tolist(),
                        names["cluster_name"].tolist(),
                        strict=True,
                    )
                )
            )
        },
    )


@dg.asset_check(
    asset="spending_opportunities", additional_ins={"customer_kpis": dg.AssetIn("customer_kpis")}
)
def opportunities_are_not_yet_bought(
    spending_opportunities: pd.DataFrame, customer_kpis: pd.DataFrame
) -> dg.AssetCheckResult:
    """No opportunity names a category the customer already spends in."""
    spend = customer_kpis.set_index("customer_id")
    columns = "spend_category_" + spending_opportunities["merchant_category"].astype(str)
    known = columns.isin(spend.columns)
    rows = spend.index.get_indexer(spending_opportunities["customer_id"])
    values = spend.reindex(columns=sorted(set(columns[known]))).to_numpy()
    column_index = pd.Index(sorted(set(columns[known]))).get_indexer(columns[known])
    already = int((values[rows[known], column_index] > 0).sum()) if known.any() else 0
    return dg.AssetCheckResult(
        passed=already == 0 and bool((rows >= 0).all()),
        metadata={"already_bought": already, "unknown_customers": int((rows < 0).sum())},
    )


FEATURE_CHECKS = [
    customer_id_is_unique,
    account_id_is_unique,
    every_customer_has_one_segment,
    every_customer_has_a_cluster,
    cluster_names_are_unique,
    opportunities_are_not_yet_bought,
]
