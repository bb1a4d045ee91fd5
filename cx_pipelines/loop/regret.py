"""Where the learned policy loses against the oracle: one cycle's regret, decomposed.

Every figure is the world's truth (the true incremental profit with the simulator's contact
fatigue, :func:`cx_pipelines.loop.policies.true_increment`), for the benchmark's and the
loop's report only; the models never see it. Per customer ``i`` the oracle earns
``o_i = increment[i, oracle_i]`` (0 when it leaves ``i`` out) and the learned policy
``l_i = increment[i, learned_i]`` for a treated row (0 for a control row or no row), so the
regret is ``sum_i (o_i - l_i)``. Each split below partitions that sum (its parts add up to
the cycle's regret):

* **by campaign** (offer × channel): ``sum`` of the oracle's value of its contacts in the
  campaign minus the learned policy's;
* **by recent contacts** (the customer's treated contacts in the fatigue window: 0, 1, 2,
  3+): where fatigue makes contacts worth less than the models think;
* **by the learned policy's action** on the customer: an explored contact, an optimiser
  contact, a control row (held out, so it earns nothing; ``forgone`` is what treating it
  would have earned; ``holdout_cost`` what the same ranked lists would have earned more
  with no control arm: per campaign its top ``treated`` ranks, treated and control alike,
  against the rows it treated), no row;
* **by overlap** with the oracle: both contact with the same campaign (no regret), with
  different campaigns, only the oracle contacts (the value missed), only the learned policy
  contacts (a truly negative one adds regret, a positive one the caps kept from the oracle
  lowers it).

Besides: the learned contacts that are truly negative (how many, their value), and per
campaign the mean predicted uplift against the mean true uplift over the learned policy's
treated contacts and over the oracle's contacts (the models' calibration where it matters).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cx_pipelines.loop.policies import CampaignEconomics

FATIGUE_BUCKETS = ("0", "1", "2", "3+")
ACTIONS = ("explored", "optimiser", "control", "none")
OVERLAPS = ("same campaign", "other campaign", "oracle only", "learned only")


def _rounded(value: float) -> float:
    return round(float(value), 2)


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return round(float(finite.mean()), 5) if len(finite) else None


def learned_rows(
    decisions: pd.DataFrame, customer_ids: np.ndarray, economics: CampaignEconomics
) -> pd.DataFrame:
    """The decided rows as positions: ``row``, ``column``, ``treated``, ``explored``,
    ``uplift`` (the models' prediction); :class:`ValueError` for unknown ones."""
    rows = pd.Index(customer_ids).get_indexer(decisions["customer_id"].to_numpy())
    columns = pd.Index(economics.campaign_id).get_indexer(decisions["campaign_id"])
    if (rows < 0).any() or (columns < 0).any():
        raise ValueError(
            "decisions name customers or campaigns the yardsticks do not see "
            f"({int((rows < 0).sum())} customers, {int((columns < 0).sum())} campaigns)"
        )
    explored = (
        decisions["exploration"].to_numpy(bool)
        if "exploration" in decisions
        else np.zeros(len(decisions), dtype=bool)
    )
    return pd.DataFrame(
        {
            "row": rows,
            "column": columns,
            "treated": (decisions["group"] == "treated").to_numpy(),
            "explored": explored,
            "uplift": pd.to_numeric(decisions["uplift"], errors="coerce").to_numpy(float)
            if "uplift" in decisions
            else np.nan,
            "rank": decisions["rank"].to_numpy(float) if "rank" in decisions else np.nan,
        }
    )


def holdout_cost(rows: pd.DataFrame, increment: np.ndarray) -> float | None:
    """True value the ranked lists lose to their control arm: per campaign, its top
    ``treated`` ranks against its treated rows (None without ranks)."""
    if rows["rank"].isna().any():
        return None
    value = increment[rows["row"].to_numpy(), rows["column"].to_numpy()]
    cost = 0.0
    for _, part in rows.assign(value=value).groupby("column"):
        top = part.nsmallest(int(part["treated"].sum()), "rank")
        cost += float(top["value"].sum() - part.loc[part["treated"], "value"].sum())
    return _rounded(cost)


def fatigue_bucket(recent: np.ndarray) -> np.ndarray:
    """Index into :data:`FATIGUE_BUCKETS` of each customer's recent treated contacts."""
    return np.minimum(np.asarray(recent, dtype=np.int64), len(FATIGUE_BUCKETS) - 1)


def regret_breakdown(
    *,
    increment: np.ndarray,
    oracle_choice: np.ndarray,
    decisions: pd.DataFrame,
    customer_ids: np.ndarray,
    economics: CampaignEconomics,
    recent: np.ndarray,
    predicted_uplift: np.ndarray,
) -> dict:
    """The cycle's regret against the oracle, split as the module docstring says (a dict of
    plain numbers, for the report and its JSON)."""
    n = increment.shape[0]
    rows = learned_rows(decisions, customer_ids, economics)
    treated = rows[rows["treated"]]
    if treated["row"].duplicated().any():
        raise ValueError("a customer holds more than one treated row in one cycle")
    everyone = np.arange(n)
    oracle_on = oracle_choice >= 0
    oracle_value = np.where(oracle_on, increment[everyone, np.maximum(oracle_choice, 0)], 0.0)
    learned_choice = np.full(n, -1)
    learned_choice[treated["row"].to_numpy()] = treated["column"].to_numpy()
    learned_on = learned_choice >= 0
    learned_value = np.where(learned_on, increment[everyone, np.maximum(learned_choice, 0)], 0.0)
    regret = oracle_value - learned_value
    bucket = fatigue_bucket(recent)
    margin, cost = economics.margin, economics.cost
    true_uplift = (increment + cost[None, :]) / np.where(margin > 0, margin, np.nan)[None, :]
    learned_predicted = np.full(n, np.nan)
    learned_predicted[treated["row"].to_numpy()] = treated["uplift"].to_numpy(float)
    learned_true = np.where(
        learned_on, true_uplift[everyone, np.maximum(learned_choice, 0)], np.nan
    )

    def part(oracle_mask: np.ndarray, learned_mask: np.ndarray) -> dict:
        return {
            "regret": _rounded(oracle_value[oracle_mask].sum() - learned_value[learned_mask].sum()),
            "oracle": _rounded(oracle_value[oracle_mask].sum()),
            "learned": _rounded(learned_value[learned_mask].sum()),
            "oracle_contacts": int(oracle_mask.sum()),
            "learned_contacts": int(learned_mask.sum()),
        }

    by_campaign = {
        campaign: part(oracle_choice == j, learned_choice == j)
        for j, campaign in enumerate(economics.campaign_id)
    }
    by_fatigue = {
        name: {
            **part(oracle_on & (bucket == k), learned_on & (bucket == k)),
            "predicted_uplift": _mean(learned_predicted[learned_on & (bucket == k)]),
            "true_uplift": _mean(learned_true[learned_on & (bucket == k)]),
        }
        for k, name in enumerate(FATIGUE_BUCKETS)
    }

    action = np.full(n, ACTIONS.index("none"))
    control = rows[~rows["treated"]]
    action[control["row"].to_numpy()] = ACTIONS.index("control")
    action[treated["row"].to_numpy()] = np.where(
        treated["explored"].to_numpy(), ACTIONS.index("explored"), ACTIONS.index("optimiser")
    )
    by_action = {}
    for k, name in enumerate(ACTIONS):
        mine = action == k
        entry = {"customers": int(mine.sum()), "regret": _rounded(regret[mine].sum())}
        if name in ("explored", "optimiser"):
            entry["value"] = _rounded(learned_value[mine].sum())
            entry["negative_contacts"] = int((mine & (learned_value < 0)).sum())
        if name == "control":
            forgone = increment[control["row"].to_numpy(), control["column"].to_numpy()]
            entry["forgone"] = _rounded(forgone.sum())
            entry["holdout_cost"] = holdout_cost(rows, increment)
        by_action[name] = entry

    overlap_kind = np.select(
        [
            oracle_on & learned_on & (oracle_choice == learned_choice),
            oracle_on & learned_on,
            oracle_on,
            learned_on,
        ],
        [0, 1, 2, 3],
        default=-1,
    )
    by_overlap = {
        name: {
            "customers": int((overlap_kind == k).sum()),
            "regret": _rounded(regret[overlap_kind == k].sum()),
        }
        for k, name in enumerate(OVERLAPS)
    }
    negative = learned_on & (learned_value < 0)
    calibration = {}
    for j, campaign in enumerate(economics.campaign_id):
        mine = treated[treated["column"] == j]
        oracle_rows = np.flatnonzero(oracle_choice == j)
        calibration[campaign] = {
            "contacts": len(mine),
            "predicted_uplift": _mean(mine["uplift"].to_numpy(float)),
            "true_uplift": _mean(true_uplift[mine["row"].to_numpy(), j]),
            "oracle_contacts": len(oracle_rows),
            "oracle_predicted_uplift": _mean(predicted_uplift[oracle_rows, j]),
            "oracle_true_uplift": _mean(true_uplift[oracle_rows, j]),
        }
    return {
        "regret": _rounded(regret.sum()),
        "by_campaign": by_campaign,
        "by_recent_contacts": by_fatigue,
        "by_learned_action": by_action,
        "by_overlap": by_overlap,
        "negative_contacts": {
            "contacts": int(negative.sum()),
            "value": _rounded(learned_value[negative].sum()),
        },
        "calibration": calibration,
    }


def _k(value: float) -> str:
    return f"{value / 1000:+,.1f}k"


def describe(breakdown: dict, *, cycle: int) -> list[str]:
    """A few readable lines of one cycle's breakdown."""
    if not breakdown:
        return []
    campaigns = sorted(breakdown["by_campaign"].items(), key=lambda item: -abs(item[1]["regret"]))
    fatigue = breakdown["by_recent_contacts"]
    action = breakdown["by_learned_action"]
    overlap = breakdown["by_overlap"]
    negative = breakdown["negative_contacts"]
    lines = [
        f"cycle {cycle} regret {breakdown['regret']:,.0f} by campaign (oracle/learned "
        "contacts): "
        + ", ".join(
            f"{name} {_k(p['regret'])} ({p['oracle_contacts']:,}/{p['learned_contacts']:,})"
            for name, p in campaigns
        ),
        "  by recent contacts 0/1/2/3+: regret "
        + " / ".join(_k(fatigue[name]["regret"]) for name in FATIGUE_BUCKETS)
        + "; oracle contacts "
        + " / ".join(f"{fatigue[name]['oracle_contacts']:,}" for name in FATIGUE_BUCKETS)
        + "; learned contacts "
        + " / ".join(f"{fatigue[name]['learned_contacts']:,}" for name in FATIGUE_BUCKETS)
        + "; their predicted/true uplift "
        + " / ".join(
            _pair(fatigue[name]["predicted_uplift"], fatigue[name]["true_uplift"])
            for name in FATIGUE_BUCKETS
        ),
        f"  by learned action: explored {_k(action['explored']['regret'])} "
        f"({action['explored']['customers']:,} contacts worth {_k(action['explored']['value'])},"
        f" {action['explored']['negative_contacts']:,} negative), optimiser "
        f"{_k(action['optimiser']['regret'])} ({action['optimiser']['customers']:,} worth "
        f"{_k(action['optimiser']['value'])}, {action['optimiser']['negative_contacts']:,} "
        f"negative), control {_k(action['control']['regret'])} (forgone "
        f"{_k(action['control']['forgone'])}, holdout cost "
        f"{_optional_k(action['control'].get('holdout_cost'))}), no row "
        f"{_k(action['none']['regret'])}",
        "  by overlap: "
        + ", ".join(
            f"{name} {overlap[name]['customers']:,} {_k(overlap[name]['regret'])}"
            for name in OVERLAPS
        )
        + f"; learned contacts truly negative {negative['contacts']:,} "
        f"({_k(negative['value'])})",
        "  predicted/true uplift, learned | oracle contacts: "
        + ", ".join(
            f"{name} {_pair(c['predicted_uplift'], c['true_uplift'])} | "
            f"{_pair(c['oracle_predicted_uplift'], c['oracle_true_uplift'])}"
            for name, c in breakdown["calibration"].items()
        ),
    ]
    return lines


def _optional_k(value: float | None) -> str:
    return "-" if value is None else _k(value)


def _pair(predicted: float | None, true: float | None) -> str:
    shown = ["-" if value is None else f"{value:.4f}" for value in (predicted, true)]
    return "/".join(shown)
