"""KPI clusters (seed 002, claim 6): customers grouped by scaled KPIs, clusters profiled and named.

Method, stated so a reader can reproduce it:

1. Features: the KPIs in :data:`CLUSTER_FEATURES`, each transformed as listed (``log`` =
   log1p of the non-negative value, heavy-tailed money and counts), plus the customer's
   spend share in each merchant category (its *category mix*). Missing recency (never
   spent) becomes the longest recency seen plus one day; missing utilisation becomes 0.
2. Scaling: z-scores (StandardScaler), clipped to +-5 so a few extreme customers cannot
   own a cluster; the category-mix block is weighted by 1/sqrt(number of categories),
   so the whole mix counts as much as one KPI.
3. k: for each k in ``k_range`` (default 3..8), MiniBatchKMeans (``random_state`` fixed)
   is fitted on a seeded sample of up to ``fit_sample`` customers and scored by the
   silhouette on a seeded sub-sample of ``score_sample``; the k with the highest
   silhouette wins (ties go to the smaller k). Every customer is then assigned to the
   nearest centre of that model, so a million customers cost one ``predict``.
4. Clusters are numbered by descending mean total spend, profiled (size, mean KPIs,
   standardised means) and named from the standardised means: the two most distinctive
   KPI traits (largest |z| above :data:`TRAIT_MIN_Z`) and the category whose share is
   most above average ("travel lovers"); names are made unique deterministically.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.cluster import MiniBatchKMeans
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

CLUSTER_FEATURES: dict[str, str] = {
    "recency_days": "log",
    "purchase_days": "log",
    "total_spend": "log",
    "average_transaction_amount": "log",
    "category_count": "identity",
    "spend_trend": "identity",
    "tenure_days": "log",
    "product_count": "identity",
    "deposit_balance": "log",
    "credit_utilisation": "identity",
    "max_days_past_due": "log",
    "interaction_count": "log",
}
"""KPI column -> transform before z-scoring (see the module docstring)."""

TRAIT_WORDS: dict[str, tuple[str | None, str | None]] = {
    "total_spend": ("high-spend", "low-spend"),
    "purchase_days": ("frequent", "infrequent"),
    "recency_days": ("dormant", "recently active"),
    "average_transaction_amount": ("big-ticket", "small-ticket"),
    "category_count": ("broad-basket", "narrow-basket"),
    "spend_trend": ("growing", "declining"),
    "tenure_days": ("long-standing", "newer"),
    "product_count": ("multi-product", "single-product"),
    "deposit_balance": ("high-balance", "low-balance"),
    "credit_utilisation": ("high-utilisation", "low-utilisation"),
    "max_days_past_due": ("delinquent", None),
    "interaction_count": ("engaged", "quiet"),
}
"""Words for a cluster whose standardised mean of a KPI is high (first) or low (second)."""

TRAIT_MIN_Z = 0.3
CATEGORY_MIN_Z = 0.5
CATEGORY_PREFIX = "spend_category_"
_CLIP = 5.0


class ClusteringError(ValueError):
    """The KPI frame cannot be clustered (missing columns, no customers, bad k range)."""


@dataclass(frozen=True)
class KpiClusters:
    """Result of :func:`cluster_kpis`."""

    assignments: pd.DataFrame  # customer_id, cluster_id, cluster_name
    profile: pd.DataFrame  # per cluster: name, size, share, mean raw KPIs
    standardised_profile: pd.DataFrame  # per cluster x feature: mean z-score (index = name)
    k: int
    silhouette_by_k: dict[int, float]


def feature_matrix(kpis: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Scaled, weighted feature matrix for clustering, and the unweighted z-scores by feature."""
    missing = [name for name in ("customer_id", *CLUSTER_FEATURES) if name not in kpis.columns]
    if missing:
        raise ClusteringError(f"customer_kpis lacks column(s) {missing} needed for clustering")
    if len(kpis) == 0:
        raise ClusteringError("customer_kpis has no rows: nothing to cluster")
    features = {}
    for name, transform in CLUSTER_FEATURES.items():
        values = kpis[name].astype(np.float64)
        if name == "recency_days":
            values = values.fillna((values.max() if values.notna().any() else 0.0) + 1.0)
        values = values.fillna(0.0)
        if transform == "log":
            values = np.log1p(values.clip(lower=0.0))
        features[name] = values.to_numpy()
    category_columns = [c for c in kpis.columns if c.startswith(CATEGORY_PREFIX)]
    total = kpis["total_spend"].to_numpy(dtype=np.float64)
    for column in category_columns:
        spend = kpis[column].to_numpy(dtype=np.float64)
        features[column.removeprefix(CATEGORY_PREFIX) + "_share"] = np.divide(
            spend, total, out=np.zeros(len(kpis)), where=total > 0
        )
    raw = pd.DataFrame(features)
    scaled = np.clip(StandardScaler().fit_transform(raw.to_numpy()), -_CLIP, _CLIP)
    z_scores = pd.DataFrame(scaled, columns=raw.columns)
    weights = np.ones(raw.shape[1])
    if category_columns:
        weights[len(CLUSTER_FEATURES) :] = 1.0 / np.sqrt(len(category_columns))
    return (scaled * weights).astype(np.float32), z_scores


def choose_k(
    matrix: np.ndarray,
    *,
    k_range: tuple[int, int] = (3, 8),
    fit_sample: int = 20_000,
    score_sample: int = 4_000,
    random_state: int = 0,
) -> tuple[MiniBatchKMeans | None, dict[int, float]]:
    """The model with the best silhouette among k in ``k_range`` (inclusive), fitted on a sample.

    Returns ``None`` as the model when there are too few distinct customers to fit
    ``k_range[0]`` clusters (they then form a single cluster), and the silhouette by k.
    """
    low, high = k_range
    if not 2 <= low <= high:
        raise ClusteringError(f"k_range must satisfy 2 <= low <= high, got {k_range}")
    rng = np.random.default_rng(random_state)
    sample = matrix[
        np.sort(rng.choice(len(matrix), size=min(fit_sample, len(matrix)), replace=False))
    ]
    distinct = len(np.unique(sample, axis=0))
    high = min(high, distinct - 1)
    if high < low:
        return None, {}
    scored = sample[
        np.sort(rng.choice(len(sample), size=min(score_sample, len(sample)), replace=False))
    ]
    scores: dict[int, float] = {}
    models: dict[int, MiniBatchKMeans] = {}
    for k in range(low, high + 1):
        models[k] = _model(k, random_state).fit(sample)
        labels = models[k].predict(scored)
        scores[k] = float(silhouette_score(scored, labels)) if len(np.unique(labels)) > 1 else -1.0
    best = max(scores, key=lambda k: (round(scores[k], 6), -k))
    return models[best], scores


def _model(k: int, random_state: int) -> MiniBatchKMeans:
    return MiniBatchKMeans(n_clusters=k, random_state=random_state, n_init=3, batch_size=4096)


def name_clusters(standardised: pd.DataFrame) -> list[str]:
    """A unique descriptive name per row of standardised cluster means (deterministic)."""
    candidates = []
    for _, row in standardised.iterrows():
        traits = []
        for feature, (high, low) in TRAIT_WORDS.items():
            z = row.get(feature, 0.0)
            word = high if z > 0 else low
            if word is not None and abs(z) >= TRAIT_MIN_Z:
                traits.append((-abs(z), feature, word))
        traits.sort()
        shares = row[[c for c in standardised.columns if c.endswith("_share")]]
        lover = None
        if len(shares) and shares.max() >= CATEGORY_MIN_Z:
            lover = f"{shares.idxmax().removesuffix('_share')} lovers"
        candidates.append(([word for _, _, word in traits], lover))

    def compose(words: list[str], lover: str | None) -> str:
        if not words and lover is None:
            return "typical customers"
        return " ".join(words + [lover or "customers"])

    depth = [min(2, len(words)) for words, _ in candidates]
    names = [compose(words[:d], lover) for (words, lover), d in zip(candidates, depth, strict=True)]
    for _ in range(len(TRAIT_WORDS)):
        duplicated = pd.Series(names).duplicated(keep=False).to_numpy()
        if not duplicated.any():
            return names
        for index in np.flatnonzero(duplicated):
            words, lover = candidates[index]
            if depth[index] < len(words):
                depth[index] += 1
                names[index] = compose(words[: depth[index]], lover)
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return unique


def cluster_kpis(
    kpis: pd.DataFrame,
    *,
    k_range: tuple[int, int] = (3, 8),
    random_state: int = 0,
    fit_sample: int = 20_000,
    score_sample: int = 4_000,
) -> KpiClusters:
    """Cluster customers on scaled KPIs with k chosen by silhouette, then profile and name them."""
    matrix, z_scores = feature_matrix(kpis)
    # one thread: k-means on small batches is slower, not faster, when threads contend
    with threadpool_limits(limits=1):
        model, scores = choose_k(
            matrix,
            k_range=k_range,
            fit_sample=fit_sample,
            score_sample=score_sample,
            random_state=random_state,
        )
        if model is None:
            labels = np.zeros(len(matrix), dtype=np.int64)
        else:
            labels = model.predict(matrix).astype(np.int64)
    labels = np.unique(labels, return_inverse=True)[1]  # drop empty clusters, if any
    k = int(labels.max()) + 1
    # number clusters by descending mean total spend, so ids are stable and meaningful
    spend = pd.Series(kpis["total_spend"].to_numpy(dtype=np.float64)).groupby(labels).mean()
    order = spend.sort_values(ascending=False, kind="stable").index.to_numpy()
    relabel = np.empty(max(int(labels.max()) + 1, 1), dtype=np.int64)
    relabel[order] = np.arange(len(order))
    labels = relabel[labels]

    standardised = z_scores.groupby(labels).mean().sort_index()
    names = name_clusters(standardised)
    standardised.index = pd.Index(names, name="cluster_name")
    raw_columns = [c for c in (*CLUSTER_FEATURES, "transaction_count") if c in kpis.columns]
    profile = kpis[raw_columns].groupby(labels).mean().sort_index()
    sizes = np.bincount(labels, minlength=len(names))
    category_share = standardised[[c for c in standardised.columns if c.endswith("_share")]]
    profile.insert(0, "cluster_name", names)
    profile.insert(1, "customers", sizes)
    profile.insert(2, "share_of_customers", sizes / sizes.sum())
    if category_share.shape[1]:
        profile.insert(
            3,
            "most_distinctive_category",
            [name.removesuffix("_share") for name in category_share.idxmax(axis=1)],
        )
    profile.index.name = "cluster_id"
    assignments = pd.DataFrame(
        {
            "customer_id": kpis["customer_id"].to_numpy(),
            "cluster_id": labels,
            "cluster_name": pd.array(np.array(names, dtype=object)[labels], dtype="str"),
        }
    )
    return KpiClusters(assignments, profile.reset_index(), standardised, k, scores)


def profile_heatmap_png(
    standardised: pd.DataFrame, *, title: str = "KPI cluster profiles"
) -> bytes:
    """PNG heatmap of standardised mean KPIs per cluster (rows) and feature (columns)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    values = standardised.to_numpy(dtype=np.float64)
    figure, axes = plt.subplots(figsize=(1.0 + 0.45 * values.shape[1], 1.5 + 0.5 * values.shape[0]))
    try:
        limit = max(1.0, float(np.nanmax(np.abs(values))) if values.size else 1.0)
        image = axes.imshow(values, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto")
        axes.set_xticks(
            range(values.shape[1]), standardised.columns, rotation=60, ha="right", fontsize=8
        )
        axes.set_yticks(range(values.shape[0]), standardised.index, fontsize=8)
        for (row, column), value in np.ndenumerate(values):
            axes.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=6)
        figure.colorbar(image, ax=axes, label="mean z-score")
        axes.set_title(title)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=80)
    finally:
        plt.close(figure)
    return buffer.getvalue()


def png_markdown(png: bytes, *, alt: str) -> str:
    """Markdown image with the PNG inlined as base64 (what Dagster's UI renders in metadata)."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
