"""New spending opportunities (seed 002, claim 10): what similar customers buy and this one not.

Similar customers are those in the same KPI cluster. For each cluster and merchant
category, the *peer adoption* is the share of the cluster's customers who bought the
category. A customer's candidate categories are those it has not bought; each scores
its peer adoption, and the ``top`` candidates scoring at least ``min_score`` are kept,
ranked 1..top (ties broken by category order). ``expected_spend`` is the mean spend in
that category of the cluster's buyers: what taking up the opportunity is worth.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORY_PREFIX = "spend_category_"
OPPORTUNITY_COLUMNS = [
    "customer_id",
    "rank",
    "merchant_category",
    "score",
    "expected_spend",
    "cluster_id",
    "cluster_name",
]


class OpportunityError(ValueError):
    """The inputs cannot be combined (missing columns, customers without a cluster)."""


def spending_opportunities(
    kpis: pd.DataFrame, clusters: pd.DataFrame, *, top: int = 3, min_score: float = 0.2
) -> pd.DataFrame:
    """Up to ``top`` categories per customer that its cluster buys and it does not, with a score.

    ``kpis`` needs ``customer_id`` and ``spend_category_<name>`` columns (customer_kpis);
    ``clusters`` needs ``customer_id``, ``cluster_id`` and ``cluster_name`` (kpi_clusters).
    """
    if top < 1:
        raise OpportunityError(f"top must be at least 1, got {top}")
    categories = [c for c in kpis.columns if c.startswith(CATEGORY_PREFIX)]
    if "customer_id" not in kpis.columns or not categories:
        raise OpportunityError(
            "customer_kpis needs customer_id and spend_category_<name> columns for opportunities"
        )
    missing = {"customer_id", "cluster_id", "cluster_name"} - set(clusters.columns)
    if missing:
        raise OpportunityError(f"kpi_clusters lacks column(s) {sorted(missing)}")
    cluster_index = pd.Index(clusters["customer_id"].to_numpy())
    position = cluster_index.get_indexer(kpis["customer_id"].to_numpy())
    if (position < 0).any():
        absent = kpis["customer_id"].to_numpy()[position < 0][:5].tolist()
        raise OpportunityError(
            f"{int((position < 0).sum())} customer(s) of customer_kpis have no cluster in "
            f"kpi_clusters (e.g. {absent}); materialise kpi_clusters again"
        )
    cluster = clusters["cluster_id"].to_numpy(dtype=np.int64)[position]
    cluster_names = clusters["cluster_name"].to_numpy()[position]

    spend = kpis[categories].to_numpy(dtype=np.float64)
    bought = spend > 0
    cluster_count = int(cluster.max()) + 1 if len(cluster) else 0
    size = np.bincount(cluster, minlength=cluster_count).astype(np.float64)
    buyers = np.column_stack(
        [
            np.bincount(cluster, weights=bought[:, j], minlength=cluster_count)
            for j in range(len(categories))
        ]
    )
    buyer_spend = np.column_stack(
        [
            np.bincount(
                cluster, weights=np.where(bought[:, j], spend[:, j], 0.0), minlength=cluster_count
            )
            for j in range(len(categories))
        ]
    )
    adoption = buyers / np.maximum(size, 1.0)[:, None]
    expected = np.divide(buyer_spend, buyers, out=np.zeros_like(buyer_spend), where=buyers > 0)

    score = np.where(bought, -np.inf, adoption[cluster])
    # stable sort on -score keeps category order among equal scores
    order = np.argsort(-score, axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(score, order, axis=1)
    keep = chosen >= min_score
    rows, ranks = np.nonzero(keep)
    category_index = order[rows, ranks]
    names = np.array([c.removeprefix(CATEGORY_PREFIX) for c in categories], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": kpis["customer_id"].to_numpy()[rows],
            "rank": (ranks + 1).astype(np.int64),
            "merchant_category": pd.array(names[category_index], dtype="str"),
            "score": chosen[rows, ranks],
            "expected_spend": expected[cluster[rows], category_index],
            "cluster_id": cluster[rows],
            "cluster_name": pd.array(cluster_names[rows], dtype="str"),
        },
        columns=OPPORTUNITY_COLUMNS,
    )
