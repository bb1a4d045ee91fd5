"""Champion versus challenger: is a challenger test group's result different, and if the
evidence is not there yet, how many more contacts would show the observed effect?

Two comparisons per challenger, both two-sided at level ``alpha``:

- ``treated_response_rate``: response rate of treated contacts, challenger − champion, by the
  two-proportion z test (pooled variance) with Fisher's exact test beside it;
- ``incremental_response_rate``: the lift over control (treated − control rate), challenger −
  champion, by a z test on the difference of two independent differences (unpooled).

Sample size still needed: with the observed effect and the current allocation between the
groups, the normal approximation needs ``n × ((z_{1−α/2} + z_{power}) / |z|)²`` contacts for
the test to reach ``power``; what is still needed is that minus what each group has (0 once
reached, null when the observed effect is 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from cx_pipelines.feedback.performance import CHAMPION

METRICS = ("treated_response_rate", "incremental_response_rate")


def _arms(frame: pd.DataFrame) -> dict[str, int]:
    treated = frame["treated"].astype(bool)
    responded = frame["responded"].astype(bool)
    return {
        "treated": int(treated.sum()),
        "treated_responses": int((treated & responded).sum()),
        "control": int((~treated).sum()),
        "control_responses": int((~treated & responded).sum()),
    }


def contacts_still_needed(
    observed_z: float, contacts: int, *, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Contacts still needed for a test at ``observed_z`` on ``contacts`` to reach ``power``
    (0 once reached, NaN when the observed effect is 0)."""
    if not np.isfinite(observed_z) or observed_z == 0:
        return np.nan
    required = (
        contacts * ((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) / observed_z) ** 2
    )
    return float(max(0.0, np.ceil(required - contacts)))


def _rate(responses: int, contacts: int) -> float:
    return responses / contacts if contacts else np.nan


def _treated_rate_test(champion: dict, challenger: dict) -> dict[str, float]:
    x1, n1 = challenger["treated_responses"], challenger["treated"]
    x0, n0 = champion["treated_responses"], champion["treated"]
    if not (n1 and n0):
        return {"effect": np.nan, "z": np.nan, "p_value": np.nan, "fisher_p_value": np.nan}
    p1, p0 = x1 / n1, x0 / n0
    pooled = (x1 + x0) / (n1 + n0)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    z = (p1 - p0) / se if se > 0 else np.nan
    table = [[x1, n1 - x1], [x0, n0 - x0]]
    return {
        "effect": p1 - p0,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        "fisher_p_value": float(stats.fisher_exact(table).pvalue),
    }


def _lift_test(champion: dict, challenger: dict) -> dict[str, float]:
    def lift(arms: dict) -> tuple[float, float]:
        p_t = _rate(arms["treated_responses"], arms["treated"])
        p_c = _rate(arms["control_responses"], arms["control"])
        variance = p_t * (1 - p_t) / arms["treated"] + p_c * (1 - p_c) / arms["control"]
        return p_t - p_c, variance

    if not all(arms[arm] for arms in (champion, challenger) for arm in ("treated", "control")):
        return {"effect": np.nan, "z": np.nan, "p_value": np.nan, "fisher_p_value": np.nan}
    lift_1, variance_1 = lift(challenger)
    lift_0, variance_0 = lift(champion)
    se = np.sqrt(variance_1 + variance_0)
    z = (lift_1 - lift_0) / se if se > 0 else np.nan
    return {
        "effect": lift_1 - lift_0,
        "z": z,
        "p_value": float(2 * stats.norm.sf(abs(z))) if np.isfinite(z) else np.nan,
        "fisher_p_value": np.nan,
    }


def champion_challenger_tests(
    frame: pd.DataFrame,
    *,
    group_column: str = "test_group",
    champion: str = CHAMPION,
    alpha: float = 0.05,
    power: float = 0.8,
) -> pd.DataFrame:
    """One row per challenger group and metric (see the module doc); empty without a champion."""
    groups = {name: _arms(rows) for name, rows in frame.groupby(group_column, observed=True)}
    columns = [
        "challenger", "champion", "metric", "champion_value", "challenger_value", "effect",
        "z", "p_value", "fisher_p_value", "significant", "champion_contacts",
        "challenger_contacts", "champion_contacts_still_needed",
        "challenger_contacts_still_needed",
    ]  # fmt: skip
    if champion not in groups:
        return pd.DataFrame(columns=columns)
    rows = []
    base = groups[champion]
    for name, arms in sorted(groups.items()):
        if name == champion:
            continue
        for metric, test in (
            ("treated_response_rate", _treated_rate_test),
            ("incremental_response_rate", _lift_test),
        ):
            result = test(base, arms)
            if metric == "treated_response_rate":
                values = [_rate(a["treated_responses"], a["treated"]) for a in (base, arms)]
                contacts = [base["treated"], arms["treated"]]
            else:
                values = [
                    _rate(a["treated_responses"], a["treated"])
                    - _rate(a["control_responses"], a["control"])
                    if a["treated"] and a["control"]
                    else np.nan
                    for a in (base, arms)
                ]
                contacts = [base["treated"] + base["control"], arms["treated"] + arms["control"]]
            rows.append(
                {
                    "challenger": name,
                    "champion": champion,
                    "metric": metric,
                    "champion_value": values[0],
                    "challenger_value": values[1],
                    **result,
                    "significant": bool(
                        np.isfinite(result["p_value"]) and result["p_value"] < alpha
                    ),
                    "champion_contacts": contacts[0],
                    "challenger_contacts": contacts[1],
                    "champion_contacts_still_needed": contacts_still_needed(
                        result["z"], contacts[0], alpha=alpha, power=power
                    ),
                    "challenger_contacts_still_needed": contacts_still_needed(
                        result["z"], contacts[1], alpha=alpha, power=power
                    ),
                }
            )
    return pd.DataFrame(rows, columns=columns)
