"""Hand-made decision logs in the exports format (INTERFACES §2) and result files (§3)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

DECIDED_AT = pd.Timestamp("2026-10-05 09:00:00")
RESPONSE_DELAY = pd.Timedelta(days=2)


def decisions(
    customers: int,
    *,
    campaign_id: str = "spring_savings",
    run_key: str = "2026-10-05-abc123",
    offer_type: str = "savings",
    channel: str = "email",
    control_share: float = 0.2,
    seed: int = 0,
    decided_at: pd.Timestamp = DECIDED_AT,
    first_customer: int = 1,
    strategy_hash: str = "hash-champion",
) -> pd.DataFrame:
    """Every decided row of one export run: treated and control, deterministic contact ids."""
    rng = np.random.default_rng(seed)
    ids = np.arange(first_customer, first_customer + customers)
    control = rng.random(customers) < control_share
    return pd.DataFrame(
        {
            "contact_id": [f"{campaign_id}-{run_key}-{customer}" for customer in ids],
            "run_key": run_key,
            "campaign_id": campaign_id,
            "customer_id": ids.astype("int64"),
            "offer_type": offer_type,
            "channel": channel,
            "treatment": f"{offer_type}_{channel}",
            "group": np.where(control, "control", "treated"),
            "rank": np.arange(1, customers + 1),
            "p_response": rng.uniform(0.01, 0.3, customers),
            "uplift": rng.uniform(0.0, 0.1, customers),
            "expected_incremental_profit": rng.uniform(-1, 10, customers),
            "selection_probability": np.where(control, control_share, 1 - control_share),
            "exploration": False,
            "decided_at": decided_at,
            "strategy_hash": strategy_hash,
            "model_versions": json.dumps({"propensity": "3", "uplift": "2"}),
        }
    )


def write_export(home: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as ``exports/<campaign>/<run>/decisions.parquet`` (one campaign, one run)."""
    campaign, run = frame["campaign_id"].iloc[0], frame["run_key"].iloc[0]
    folder = home / "exports" / campaign / run
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "decisions.parquet", index=False)
    return folder / "decisions.parquet"


def results_for(
    decided: pd.DataFrame,
    *,
    responded: np.ndarray | None = None,
    revenue: float = 40.0,
    delay: pd.Timedelta = RESPONSE_DELAY,
) -> pd.DataFrame:
    """One outcome per decided row (INTERFACES §3 columns)."""
    if responded is None:
        responded = np.arange(len(decided)) % 3 == 0
    return pd.DataFrame(
        {
            "contact_id": decided["contact_id"].to_numpy(),
            "customer_id": decided["customer_id"].to_numpy(),
            "campaign_id": decided["campaign_id"].to_numpy(),
            "offer_type": decided["offer_type"].to_numpy(),
            "channel": decided["channel"].to_numpy(),
            "outcome": np.where(responded, "responded", "not_responded"),
            "revenue": np.where(responded, revenue, 0.0),
            "responded_at": pd.to_datetime(decided["decided_at"]).to_numpy() + delay,
        }
    )


def drop(home: Path, name: str, results: pd.DataFrame) -> Path:
    """Drop ``results`` into the inbox as CSV or Parquet (by ``name``'s suffix), atomically."""
    folder = home / "inbox"
    folder.mkdir(parents=True, exist_ok=True)
    temporary = folder / f".{name}.tmp"
    if name.endswith(".csv"):
        results.to_csv(temporary, index=False)
    else:
        results.to_parquet(temporary, index=False)
    os.replace(temporary, folder / name)
    return folder / name
