"""Plots of strategy performance as PNG bytes (non-interactive Agg backend)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from cx_pipelines.feedback.performance import ALL


def _axes(title: str):  # noqa: ANN202 - matplotlib types are not part of the public API
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5.0, 3.6))
    axes.set_title(title)
    return figure, axes


def _png(figure: object) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def lift_by_test_group_plot(cube: pd.DataFrame) -> bytes:
    """Incremental response rate (treated − control) per test group, with its interval."""
    rows = cube[cube["grain"] == "test_group"].sort_values("test_group")
    figure, axes = _axes("Lift over control by test group")
    positions = np.arange(len(rows))
    lift = rows["incremental_response_rate"].to_numpy(float)
    errors = np.vstack(
        [
            lift - rows["incremental_response_rate_low"].to_numpy(float),
            rows["incremental_response_rate_high"].to_numpy(float) - lift,
        ]
    )
    axes.bar(positions, np.nan_to_num(lift), yerr=np.nan_to_num(errors), capsize=4)
    axes.axhline(0, color="grey", linewidth=0.8)
    axes.set_xticks(positions, rows["test_group"].tolist(), rotation=20)
    axes.set_ylabel("treated rate − control rate")
    return _png(figure)


def cumulative_gains_plot(frame: pd.DataFrame, *, score: str = "p_response") -> bytes:
    """Share of treated responses captured by the top share of treated contacts, ranked by
    the decision's ``score``, one curve per test group, against random targeting."""
    figure, axes = _axes(f"Cumulative gains (treated contacts by {score})")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="random")
    treated = frame[frame["treated"].astype(bool) & frame[score].notna()]
    for group, rows in treated.groupby("test_group"):
        responded = rows.sort_values(score, ascending=False)["responded"].astype(float).to_numpy()
        if not responded.sum():
            continue
        share = np.arange(1, len(responded) + 1) / len(responded)
        axes.plot(
            np.concatenate([[0.0], share]),
            np.concatenate([[0.0], np.cumsum(responded) / responded.sum()]),
            label=str(group) if group != ALL else "all",
        )
    axes.set_xlabel("share of treated contacts")
    axes.set_ylabel("share of responses")
    axes.legend(fontsize=8)
    return _png(figure)
