"""Helpers of the closed-loop tests: a small world and decision frames like an export's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.world.simulator import WorldTruth


def build_small_world(home: Path) -> WorldTruth:
    """Generate a 2,000-customer world (seed 3) in ``home``; its truth as the simulator reads it."""
    from cx_pipelines.world import generate_world

    url = f"sqlite:///{home / 'source.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        generate_world(customers=2_000, seed=3, source_url=url)
    return WorldTruth.load(truth_path=home / "world" / "truth.parquet", source_url=url)


def decisions_frame(
    customer_ids: np.ndarray,
    *,
    campaign_id: str,
    offer_type: str,
    channel: str,
    treated: np.ndarray,
    run_key: str,
    decided_at: str = "2026-10-05",
) -> pd.DataFrame:
    """Decided rows in the columns of an export run's decisions.parquet that the loop reads."""
    count = len(customer_ids)
    return pd.DataFrame(
        {
            "contact_id": [f"{campaign_id}-{run_key}-{c}" for c in customer_ids],
            "run_key": run_key,
            "campaign_id": campaign_id,
            "customer_id": np.asarray(customer_ids, dtype=np.int64),
            "offer_type": offer_type,
            "channel": channel,
            "treatment": f"{offer_type}_{channel}",
            "group": np.where(treated, "treated", "control"),
            "rank": np.arange(1, count + 1),
            "selection_probability": np.where(treated, 0.9, 0.1),
            "decided_at": pd.Timestamp(decided_at),
        }
    )


def write_export(exports: Path, frame: pd.DataFrame) -> Path:
    """Lay ``frame`` out as exports/<campaign>/<run_key>/decisions.parquet; the run folder."""
    folder = exports / str(frame["campaign_id"].iloc[0]) / str(frame["run_key"].iloc[0])
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "decisions.parquet", index=False)
    return folder
