"""Targeting lists: one offer per customer across competing campaigns, under their caps.

For the campaigns active on the decision date:

1. **Eligible** = the campaign's rule holds and the strategy's contact policy allows the
   customer on the campaign's channel and offer; the optimiser also needs the models to
   score the pair (exploration does not: with no champion model yet, a campaign still
   explores, its rows' scores left null).
2. **Value** of a treated contact = expected incremental profit
   ``uplift x margin_per_response - cost_per_contact``; ``p_response`` is the propensity.
3. **Exploration** (:mod:`.exploration`) draws a bounded share of rows at random for
   immature offer x channel pairs, among the customers whose optimistic value
   ``p_response x margin - cost`` is positive (every eligible one where the pair is
   unscored, or with ``explore_worthwhile_only=False``); these take their campaign first.
4. **Optimiser** (:func:`.optimiser.assign`) gives the other customers at most one
   campaign each, maximising the expected value of a decided row
   ``(1 - control_share) x value`` under the treated-contact capacity left after
   exploration (budget folded to contacts), expressed in decided rows. The certified
   gap reported (``summary["gap"]``, the asset's ``certified_gap``) is this problem's.
   **Thompson draws** (``thompson_scale > 0``): the uplift the optimiser ranks on is not
   the model's posterior mean but one draw of it, ``uplift + scale x sd x z``, with ``sd``
   the model's posterior standard deviation of the row's uplift (``uplift_sd__<offer>__
   <channel>`` in the scores; 0 where the model has none) and ``z`` standard normal. Each
   customer has ``thompson_draws`` draws per campaign (``z = ndtri(uniform(customer,
   "thompson:<date>:<campaign salt>:<k>"))``) and is decided on the ``k``-th, ``k`` drawn
   uniformly per customer and date. A customer the model is unsure of is sometimes ranked
   as if the model underrated it, so the loop contacts it and learns; where the model is
   sure, the draw is the mean (Thompson 1933; Chapelle & Li 2011). The row keeps the mean
   uplift and value; its trace has the draw and the sd. The draw is made again on every
   decision date, so a customer passed over once is not passed over for good. Off by
   default: in the 50k loop it cost more than it taught (``models/uplift.yaml``).
5. **Controls**: a decided row is control when ``uniform(customer_id, control_salt) <
   control_share`` (:mod:`.draws`), with ``control_salt = f"{campaign.salt}@{decision
   date}"`` (:func:`control_salt`) — fixed per customer, campaign and decision date (a re-run
   of the day draws the same), independent of the scores, so control and treated come from
   the same ranked list, and drawn afresh each decision date. A draw fixed per customer and
   campaign would hold the same customers out of every run: never contacted, they stay the
   freshest, rank first again and are held out again, so the hold-out collects the customers
   most worth contacting (in the closed loop 1,322 of cycle 4's 1,409 control rows were
   cycle 3's, with 0.55–0.99 recent contacts against the treated rows' 2.4–2.7). Controls are not
   contacted and cost nothing; if the realised treated rows exceed the capacity, the
   lowest-ranked optimiser rows are dropped, treated and control alike, until they fit.
6. **Selection probability** of a row (customer ``i``, campaign ``j``, its arm) is
   ``(q_ij + (1 - sum_k q_ik) * [g_i = j]) * P(arm)``: ``q`` the exploration
   probabilities, ``g_i`` the campaign the optimiser's prices give ``i`` (its choice,
   or for an explored customer the best positive ``value - price``). With Thompson draws
   ``[g_i = j]`` becomes the share of the customer's draws under which ``g_i = j``: its own
   draw gives its choice, every other draw the best positive ``value - price`` under that
   draw (the prices are the run's). As the draw is uniform over the customer's draws, this
   is the probability of the logged choice given the prices.
7. **Experiment** (:mod:`.experiment`): with a champion/challenger experiment active on the
   date, steps 1–6 run per arm on the arm's customers, with the arm's share of every cap,
   the arm's scores and value (``uplift``, or ``propensity``: ``p_response x margin -
   cost`` replaces the value in steps 4–6), exploration and the experiment's control
   share if it states one; every row carries its arm as
   ``test_group`` (null without an experiment), ranks count within the arm, selection
   probabilities are given the customer's arm (an independent, documented draw), and the
   summary gains ``experiment`` (arms' sizes, economics, per-arm counts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import date
from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy.special import ndtri

from cx_pipelines.campaigns.catalog import Campaign
from cx_pipelines.campaigns.draws import contact_ids, uniform
from cx_pipelines.campaigns.experiment import Experiment, arm_campaigns, arm_of
from cx_pipelines.campaigns.exploration import pair_positives, plan_exploration
from cx_pipelines.campaigns.exports import DECISION_COLUMNS
from cx_pipelines.campaigns.optimiser import Assignment, assign, capacities
from cx_pipelines.campaigns.population import contact_policy

TARGET_COLUMNS = [*DECISION_COLUMNS, "trace"]


@dataclass(frozen=True)
class TargetingSettings:
    decision_date: date
    exploration_share: float = 0.1
    mature_positives: int = 50
    exploration_per_customer: float = 0.5
    explore_worthwhile_only: bool = True
    thompson_scale: float = 0.0
    thompson_draws: int = 16

    def __post_init__(self) -> None:
        if self.thompson_scale < 0 or self.thompson_draws < 1:
            raise ValueError(
                f"thompson_scale must be at least 0 and thompson_draws at least 1, got "
                f"{self.thompson_scale} and {self.thompson_draws}"
            )


@dataclass(frozen=True)
class Targeting:
    targets: pd.DataFrame  # TARGET_COLUMNS, ranked within each campaign
    assignment: Assignment
    run_key: str
    summary: dict  # totals and per-campaign counts (no personal data)


def run_key_for(settings: TargetingSettings, *, fingerprint: dict) -> str:
    """``YYYY-MM-DD-<10 hex>``: the decision date and a hash of every input."""
    text = json.dumps({"settings": asdict(settings), **fingerprint}, sort_keys=True, default=str)
    return f"{settings.decision_date:%Y-%m-%d}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def control_salt(campaign: Campaign, decision_date: date) -> str:
    """The salt of a campaign's control draw on a decision date (step 5 of the module doc)."""
    return f"{campaign.salt}@{decision_date.isoformat()}"


def score_matrix(scores: pd.DataFrame, ids: np.ndarray, campaigns, prefix: str) -> np.ndarray:
    """customers x campaigns of ``<prefix>__<offer>__<channel>`` (NaN where missing)."""
    indexed = scores.set_index("customer_id")
    columns = []
    for campaign in campaigns:
        name = f"{prefix}__{campaign.offer}__{campaign.channel}"
        column = indexed[name] if name in indexed else pd.Series(dtype=float)
        columns.append(column.reindex(ids).to_numpy(dtype=float))
    return np.column_stack(columns) if columns else np.zeros((len(ids), 0))


def target(
    campaigns: list[Campaign],
    population: pd.DataFrame,
    scores: pd.DataFrame,
    history: pd.DataFrame,
    *,
    caps: list[tuple[str, int, float]],
    decline_limit: tuple[int, float] | None,
    settings: TargetingSettings,
    strategy_hash: str,
    model_versions: dict[str, str | None],
    fingerprint: dict,
    experiment: Experiment | None = None,
    arm_scores: Mapping[str, pd.DataFrame] | None = None,
) -> Targeting:
    """Decide the targeting lists of every campaign active on the decision date; with an
    ``experiment`` active that day, per arm (:mod:`.experiment`; ``arm_scores``: an arm's
    own scores by arm name, else ``scores``)."""
    run_key = run_key_for(settings, fingerprint=fingerprint)
    common = dict(
        caps=caps, decline_limit=decline_limit, strategy_hash=strategy_hash,
        model_versions=model_versions, run_key=run_key,
    )  # fmt: skip
    if experiment is None or not experiment.active_on(settings.decision_date):
        return _target_arm(campaigns, population, scores, history, settings=settings, **common)
    return _target_experiment(
        campaigns, population, scores, history, experiment, arm_scores or {}, settings, common
    )


def _target_arm(
    campaigns: list[Campaign],
    population: pd.DataFrame,
    scores: pd.DataFrame,
    history: pd.DataFrame,
    *,
    caps: list[tuple[str, int, float]],
    decline_limit: tuple[int, float] | None,
    settings: TargetingSettings,
    strategy_hash: str,
    model_versions: dict[str, str | None],
    run_key: str,
    value_kind: str = "uplift",
) -> Targeting:
    """Targeting of one population (everyone, or one experiment arm's customers)."""
    day = pd.Timestamp(settings.decision_date)
    active = [c for c in campaigns if c.active_on(settings.decision_date)]
    ids = population["customer_id"].to_numpy()
    rule_ok = _columns([c.eligibility.evaluate(population) for c in active], len(ids))
    policy = contact_policy(
        ids, active, history, decision_date=day, caps=caps, decline_limit=decline_limit
    )
    propensity = score_matrix(scores, ids, active, "propensity")
    uplift = score_matrix(scores, ids, active, "uplift")
    share = np.array([c.control_share for c in active])
    margin = np.array([c.margin_per_response for c in active])
    cost = np.array([c.cost_per_contact for c in active])
    allowed = rule_ok & policy.allowed  # exploration needs no scores: it learns the pair
    eligible = allowed & ~np.isnan(uplift) & ~np.isnan(propensity)
    value = uplift * margin - cost
    # what this population's targeting maximises: the value, or the incumbents' propensity x margin
    objective = value if value_kind == "uplift" else propensity * margin - cost
    optimistic = propensity * margin - cost  # uplift <= p_treated: no contact is worth more
    worth = np.isnan(optimistic) | (optimistic > 0) if settings.explore_worthwhile_only else None
    treated_capacity = capacities(
        cost=cost,
        budget=np.array([c.budget for c in active]),
        volume_cap=np.array([c.volume_cap for c in active]),
        customers=len(ids),
    )
    plan = plan_exploration(
        ids,
        allowed,
        active,
        pair_positives(history[history["contacted_at"] < day], active),
        treated_capacity / np.maximum(1 - share, 1e-9),
        salt=f"explore:{settings.decision_date}",
        max_share=settings.exploration_share,
        mature_positives=settings.mature_positives,
        max_per_customer=settings.exploration_per_customer,
        worth=worth,
    )
    salts = [control_salt(c, settings.decision_date) for c in active]
    control = _columns(
        [uniform(ids, salt) < c.control_share for salt, c in zip(salts, active, strict=True)],
        len(ids),
    )
    explored = plan.explored >= 0
    rows = np.arange(len(ids))
    explored_treated = np.bincount(
        plan.explored[explored][~control[rows[explored], plan.explored[explored]]],
        minlength=len(active),
    )
    room = np.maximum(treated_capacity - explored_treated, 0)
    draws = None
    if value_kind == "uplift" and settings.thompson_scale > 0:
        spread = score_matrix(scores, ids, active, "uplift_sd")
        draws = thompson_draws(ids, active, uplift, spread, settings)
        objective = draws.uplift[draws.pick, np.arange(len(ids))] * margin - cost
    decided_value = np.where(eligible & ~explored[:, None], (1 - share) * objective, np.nan)
    result = assign(
        decided_value,
        cost=np.zeros(len(active)),
        budget=np.full(len(active), np.inf),
        volume_cap=np.floor(room / np.maximum(1 - share, 1e-9)),
    )
    choice = np.where(explored, plan.explored, result.choice)
    choice = fit_treated(choice, explored, control, objective, treated_capacity)

    # the campaign the optimiser's prices give a customer (an explored one's counterfactual)
    def priced(values: np.ndarray) -> np.ndarray:
        net = np.where(eligible, (1 - share) * values - result.prices, -np.inf)
        return np.c_[np.zeros(len(ids)), net].argmax(axis=1) - 1

    own = np.where(explored, priced(objective), result.choice)
    greedy = _one_hot(own, len(active))
    if draws is not None:  # over every draw the customer could have had; its own gave `own`
        greedy = np.mean(
            [_one_hot(np.where(draws.pick == k, own, priced(u * margin - cost)), len(active))
             for k, u in enumerate(draws.uplift)],
            axis=0,
        )  # fmt: skip
    targets = _rows(
        active, ids, choice, explored, control, plan, greedy,
        propensity=propensity, uplift=uplift, value=value, objective=objective,
        prices=result.prices, draws=draws,
        run_key=run_key, day=day, strategy_hash=strategy_hash, model_versions=model_versions,
    )  # fmt: skip
    summary = _summary(active, campaigns, targets, allowed, policy.reasons, plan, treated_capacity)
    summary.update(gap=result.gap, upper_bound=result.upper_bound, objective=result.objective)
    return Targeting(targets=targets, assignment=result, run_key=run_key, summary=summary)


def _target_experiment(
    campaigns, population, scores, history, experiment: Experiment, arm_scores, settings, common
) -> Targeting:
    """Each arm targeted on its own customers with its share of the caps, then put together."""
    arms = arm_of(population["customer_id"].to_numpy(), experiment)
    parts, choice = [], np.full(len(population), -1, dtype=np.int64)
    for arm in experiment.arms:
        members = np.flatnonzero(arms == arm.name)
        arm_settings = settings if arm.targeting.exploration else replace(
            settings, exploration_share=0.0
        )  # fmt: skip
        part = _target_arm(
            arm_campaigns(campaigns, arm.share, control_share=experiment.control_share),
            population.iloc[members].reset_index(drop=True),
            arm_scores.get(arm.name, scores),
            history,
            settings=arm_settings,
            value_kind=arm.targeting.value,
            **common,
        )
        part.targets["test_group"] = arm.name
        choice[members] = part.assignment.choice
        parts.append((arm, len(members), part))
    targets = pd.concat([part.targets for *_, part in parts], ignore_index=True)
    active = [c for c in campaigns if c.active_on(settings.decision_date)]
    champion = parts[0][2].summary["per_campaign"]
    summary = _summary(active, campaigns, targets, None, {}, None, None)
    for campaign_id, figures in summary["per_campaign"].items():
        for key in ("eligible", "treated_capacity"):
            figures[key] = _sum_arms(parts, campaign_id, key)
        for key in ("pair_positives", "exploration_share"):  # the first arm's
            figures[key] = champion[campaign_id][key]
        figures["blocked_by_policy"] = _reasons_of_arms(parts, campaign_id)
    objective = sum(part.assignment.objective for *_, part in parts)
    upper = sum(part.assignment.upper_bound for *_, part in parts)
    gap = (upper - objective) / max(abs(upper), 1e-12)
    summary.update(gap=gap, upper_bound=upper, objective=objective)
    summary["experiment"] = {
        **experiment.describe(),
        "customers": {arm.name: size for arm, size, _ in parts},
        "economics": {
            c.campaign_id: {
                "margin_per_response": c.margin_per_response,
                "cost_per_contact": c.cost_per_contact,
            }
            for c in active
        },
        "per_arm": {
            arm.name: {key: part.summary[key] for key in ARM_SUMMARY} | {"gap": part.summary["gap"]}
            for arm, _, part in parts
        },
    }
    first = parts[0][2].assignment
    assignment = replace(first, choice=choice, objective=objective, upper_bound=upper, gap=gap)
    return Targeting(targets=targets, assignment=assignment, run_key=common["run_key"],
                     summary=summary)  # fmt: skip


ARM_SUMMARY = ("treated", "control", "explored", "expected_incremental_profit", "per_campaign")


def _sum_arms(parts, campaign_id: str, key: str) -> int:
    return int(sum(part.summary["per_campaign"][campaign_id][key] for *_, part in parts))


def _reasons_of_arms(parts, campaign_id: str) -> dict[str, int]:
    reasons: dict[str, int] = {}
    for *_, part in parts:
        for reason, count in part.summary["per_campaign"][campaign_id]["blocked_by_policy"].items():
            reasons[reason] = reasons.get(reason, 0) + count
    return reasons


def _columns(columns: list[np.ndarray], size: int) -> np.ndarray:
    """customers x campaigns boolean matrix from one column per campaign (maybe none)."""
    return np.column_stack(columns) if columns else np.zeros((size, 0), dtype=bool)


@dataclass(frozen=True)
class ThompsonDraws:
    uplift: np.ndarray  # draws x customers x campaigns: the uplift under each posterior draw
    pick: np.ndarray  # (customers,) the draw each customer is decided on
    spread: np.ndarray  # customers x campaigns: the posterior sd used (0 where unknown)


def thompson_draws(
    ids: np.ndarray,
    active: list[Campaign],
    uplift: np.ndarray,
    spread: np.ndarray,
    settings: TargetingSettings,
) -> ThompsonDraws:
    """``thompson_draws`` draws of every customer's uplift from ``N(uplift, (scale x sd)^2)``
    and one of them picked per customer, all from :func:`.draws.uniform` salted with the
    decision date (step 4 of the module docstring)."""
    day = settings.decision_date.isoformat()
    spread = np.where(np.isfinite(spread), spread, 0.0)
    normal = np.stack(
        [
            np.column_stack(
                [ndtri(np.clip(uniform(ids, f"thompson:{day}:{c.salt}:{k}"), 1e-12, 1 - 1e-12))
                 for c in active]
            ).reshape(len(ids), len(active))
            for k in range(settings.thompson_draws)
        ]
    )  # fmt: skip
    pick = np.minimum(
        (uniform(ids, f"thompson:{day}") * settings.thompson_draws).astype(np.int64),
        settings.thompson_draws - 1,
    )
    drawn = uplift[None, :, :] + settings.thompson_scale * spread[None, :, :] * normal
    return ThompsonDraws(uplift=drawn, pick=pick, spread=spread)


def _one_hot(choice: np.ndarray, campaigns: int) -> np.ndarray:
    """customers x campaigns: 1 at each customer's campaign (none for -1)."""
    matrix = np.zeros((len(choice), campaigns))
    chosen = np.flatnonzero(choice >= 0)
    matrix[chosen, choice[chosen]] = 1.0
    return matrix


def fit_treated(choice, explored, control, value, capacity) -> np.ndarray:
    """Drop the lowest-value optimiser rows of a campaign until its treated rows fit."""
    choice = choice.copy()
    for j in range(control.shape[1]):
        members = np.flatnonzero(choice == j)
        excess = int((~control[members, j]).sum()) - int(capacity[j])
        if excess <= 0:
            continue
        # optimiser rows first (lowest value first), exploration rows only if they alone overflow
        order = members[np.lexsort((value[members, j], explored[members]))]
        # drop in that order up to and including the row that takes the excess-th treated one
        treated_dropped = np.cumsum(~control[order, j])
        last = int(np.searchsorted(treated_dropped, excess))
        choice[order[: last + 1]] = -1
    return choice


def _thompson_trace(draws: ThompsonDraws | None, drawn: float, spread: float) -> dict:
    if draws is None:
        return {}
    figures = {"uplift_draw": round(float(drawn), 6), "uplift_sd": round(float(spread), 6)}
    return {"thompson": figures}


def _rows(active, ids, choice, explored, control, plan, greedy, **context) -> pd.DataFrame:
    frames = []
    for j, campaign in enumerate(active):
        members = np.flatnonzero(choice == j)
        order = np.lexsort((ids[members], -context["objective"][members, j]))
        members = members[order]
        value = context["value"][members, j]
        in_control = control[members, j]
        q = plan.probability[members, j]
        base = q + (1 - plan.probability[members].sum(axis=1)) * greedy[members, j]
        arm = np.where(in_control, campaign.control_share, 1 - campaign.control_share)
        is_explored = explored[members]
        draws = context["draws"]
        drawn = (
            draws.uplift[draws.pick[members], members, j] if draws is not None
            else np.full(len(members), np.nan)
        )  # fmt: skip
        spread = draws.spread[members, j] if draws is not None else np.full(len(members), np.nan)
        trace = [
            json.dumps(
                {
                    "method": "exploration" if e else "optimiser",
                    "eligibility": campaign.eligibility.describe(),
                    "contact_policy": "passed",
                    "value_per_treated_contact": None if np.isnan(v) else round(float(v), 4),
                    "price": round(float(context["prices"][j]), 6),
                    "pair_positives": int(plan.positives[j]),
                    "maturity": round(float(plan.maturity[j]), 4),
                    "exploration_probability": round(float(p), 6),
                    "control_share": campaign.control_share,
                    "campaign_file": f"{campaign.file}@{campaign.content_hash}",
                }
                | _thompson_trace(draws, d, sd),
                sort_keys=True,
            )
            for e, v, p, d, sd in zip(is_explored, value, q, drawn, spread, strict=True)
        ]
        frames.append(
            pd.DataFrame(
                {
                    "contact_id": contact_ids(
                        ids[members], campaign_id=campaign.campaign_id, run_key=context["run_key"]
                    ),
                    "run_key": context["run_key"],
                    "campaign_id": campaign.campaign_id,
                    "customer_id": ids[members],
                    "offer_type": campaign.offer,
                    "channel": campaign.channel,
                    "treatment": campaign.treatment,
                    "group": np.where(in_control, "control", "treated"),
                    "rank": np.arange(1, len(members) + 1, dtype=np.int64),
                    "p_response": context["propensity"][members, j],
                    "uplift": context["uplift"][members, j],
                    "expected_incremental_profit": value,
                    "selection_probability": base * arm,
                    "exploration": is_explored,
                    "decided_at": context["day"],
                    "strategy_hash": context["strategy_hash"],
                    "model_versions": json.dumps(context["model_versions"], sort_keys=True),
                    "test_group": None,
                    "trace": trace,
                }
            )
        )
    if not frames:
        return pd.DataFrame({column: [] for column in TARGET_COLUMNS})
    return pd.concat(frames, ignore_index=True)[TARGET_COLUMNS]


def _summary(active, campaigns, targets, eligible, reasons, plan, capacity) -> dict:
    """Totals and per-campaign counts; ``eligible``, ``plan`` and ``capacity`` None: zeros
    (an experiment fills them in from its arms)."""
    if plan is None:
        eligible = np.zeros((0, len(active)), dtype=bool)
        capacity = np.zeros(len(active), dtype=np.int64)
        plan = SimpleNamespace(positives=capacity, share=np.zeros(len(active)))
    treated = targets[targets["group"] == "treated"]
    per_campaign = {}
    for j, campaign in enumerate(active):
        rows = targets[targets["campaign_id"] == campaign.campaign_id]
        mine = rows[rows["group"] == "treated"]
        per_campaign[campaign.campaign_id] = {
            "eligible": int(eligible[:, j].sum()),
            "treated": len(mine),
            "control": int((rows["group"] == "control").sum()),
            "explored": int(rows["exploration"].sum()),
            "treated_capacity": int(capacity[j]),
            "volume_cap": None if np.isinf(campaign.volume_cap) else int(campaign.volume_cap),
            "budget": None if np.isinf(campaign.budget) else campaign.budget,
            "spend": round(len(mine) * campaign.cost_per_contact, 2),
            "pair_positives": int(plan.positives[j]),
            "exploration_share": round(float(plan.share[j]), 4),
            "blocked_by_policy": reasons.get(campaign.campaign_id, {}),
            "expected_incremental_profit": round(
                float(mine["expected_incremental_profit"].sum()), 2
            ),
        }
    return {
        "active_campaigns": [c.campaign_id for c in active],
        "inactive_campaigns": [c.campaign_id for c in campaigns if c not in active],
        "treated": len(treated),
        "control": int((targets["group"] == "control").sum()),
        "explored": int(targets["exploration"].sum()),
        "estimated_response_rate": float(treated["p_response"].mean()) if len(treated) else 0.0,
        "expected_incremental_responses": float(treated["uplift"].sum()),
        "expected_incremental_profit": float(treated["expected_incremental_profit"].sum()),
        "per_campaign": per_campaign,
    }
