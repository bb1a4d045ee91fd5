"""A closed loop at library level, for replaying its last decision log many times.

``loop_history`` runs ``cycles - 1`` weekly decisions with the campaigns package's own
targeting (:func:`cx_pipelines.campaigns.targeting.target`: optimiser, exploration, control
draws, the contact policy with caps and decline suppression) on a small world, each
answered by the simulator's response model with its contact fatigue, and keeps the
contact history the way ``campaign_targets`` reads it. The last cycle's decision is then
made on that history; :func:`replay` answers it (or re-decides it with fresh draws) many
times, so an estimator's bias and coverage on a log *with loop history* can be measured
against the truth of a candidate on that same history.

``fresh_controls``: the control draw is salted with the decision date (a new hold-out every
run, as ``target`` draws it) instead of the campaign's fixed salt (the same customers held out
every run, as the platform drew it before: :func:`fixed_control_draws` replays that design,
whose logs the off-policy estimators still have to read).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cx_pipelines.campaigns import targeting
from cx_pipelines.campaigns.catalog import check_campaign_file
from cx_pipelines.loop import off_policy
from cx_pipelines.loop.candidate import persistent_draws
from cx_pipelines.loop.policies import action_values
from cx_pipelines.loop.targeting_inputs import economics_of
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world.simulator import FATIGUE_WINDOW_DAYS, WorldTruth, answer

CAMPAIGNS = (  # campaign, offer, channel, margin, cost, volume cap, control share
    ("card_app", "credit_card", "mobile_app", 180.0, 3.0, 150, 0.1),
    ("savings_branch", "savings", "branch", 120.0, 4.0, 100, 0.1),
    ("loan_web", "personal_loan", "web", 450.0, 2.0, 120, 0.1),
    ("mortgage_branch", "mortgage", "branch", 1200.0, 12.0, 40, 0.1),
)
CAPS = [("email", 2, 7.0), ("*", 8, 30.0)]  # the policy strategy's caps (omnichannel.yaml)
DECLINES = (3, 90.0)  # its decline suppression
START = date(2026, 10, 1)
HISTORY_COLUMNS = (
    "customer_id", "campaign_id", "offer_type", "channel", "treated", "responded",
    "contacted_at", "answered", "group",
)  # fmt: skip


def write_campaigns(
    folder: Path, *, cap_factor: float = 1.0, suffix: str = "", table: tuple = CAMPAIGNS
) -> list:
    """Campaigns (``table`` rows, default the loop's) as validated YAML files (every customer
    eligible by rule)."""
    folder.mkdir(parents=True, exist_ok=True)
    campaigns = []
    for name, offer, channel, margin, cost, cap, control in table:
        path = folder / f"{name}.yaml"
        path.write_text(
            f"campaign_id: {name}{suffix}\noffer: {offer}\ntreatment: {offer}_offer\n"
            f"channel: {channel}\neligibility: {{all: []}}\ncost_per_contact: {cost}\n"
            f"margin_per_response: {margin}\nvolume_cap: {int(cap * cap_factor)}\n"
            f"control_share: {control}\nstart: 2026-01-01\nend: 2027-12-31\n",
            encoding="utf-8",
        )
        campaign, errors = check_campaign_file(path)
        assert campaign is not None, errors
        campaigns.append(campaign)
    return campaigns


def model_scores(truth: WorldTruth, *, seed: int = 7, noise: float = 0.3) -> pd.DataFrame:
    """Noisy models of the truth, blind to fatigue (like a champion trained on one-offs)."""
    rng = np.random.default_rng(seed)
    frame = {"customer_id": truth.customer_id}
    for o, offer in enumerate(OFFER_TYPES):
        for c, channel in enumerate(OFFER_CHANNELS):
            treated = truth.p_treated[:, o, c] * rng.lognormal(0, noise, len(truth.customer_id))
            control = truth.p_control[:, o] * rng.lognormal(0, noise, len(truth.customer_id))
            frame[f"propensity__{offer}__{channel}"] = np.clip(treated, 0, 1)
            frame[f"uplift__{offer}__{channel}"] = np.clip(treated, 0, 1) - control
    return pd.DataFrame(frame)


def recent(history: pd.DataFrame, customer_ids: np.ndarray, day: date) -> np.ndarray:
    """Treated contacts of each customer in the fatigue window strictly before ``day`` (the
    simulator's rule, :func:`cx_pipelines.world.simulator.recent_contacts`)."""
    age = (pd.Timestamp(day) - pd.to_datetime(history["contacted_at"])) / pd.Timedelta(days=1)
    inside = history[history["treated"] & (age > 0) & (age <= FATIGUE_WINDOW_DAYS)]
    counts = inside.groupby("customer_id").size()
    return counts.reindex(customer_ids).fillna(0).to_numpy(np.int64)


@contextmanager
def exploration_salt(extra: str) -> Iterator[None]:
    """Salt the exploration draw with ``extra`` too (it is salted with the date only), so a
    replay of one date can redraw it."""
    original = targeting.plan_exploration

    def salted(*args, salt: str, **kwargs):
        return original(*args, salt=f"{salt}:{extra}", **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(targeting, "plan_exploration", salted)
        yield


@contextmanager
def fixed_control_draws() -> Iterator[None]:
    """The control draw fixed per customer and campaign (the campaign's salt alone), as the
    platform drew it before it salted the draw with the decision date."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(targeting, "control_salt", lambda campaign, decision_date: campaign.salt)
        yield


def decide(
    campaigns: list, truth: WorldTruth, scores: pd.DataFrame, history: pd.DataFrame, *,
    day: date, exploration: float, control_salt: str | None,
) -> pd.DataFrame:  # fmt: skip
    """One targeting run (``control_salt``: appended to each campaign's salt, or None for
    draws fixed per customer and campaign)."""
    if control_salt is not None:
        campaigns = [dataclasses.replace(c, salt=f"{c.salt}:{control_salt}") for c in campaigns]
    with nullcontext() if control_salt is not None else fixed_control_draws():
        result = targeting.target(
            campaigns,
            pd.DataFrame({"customer_id": truth.customer_id}),
            scores,
            history,
            caps=CAPS,
            decline_limit=DECLINES,
            settings=targeting.TargetingSettings(decision_date=day, exploration_share=exploration),
            strategy_hash="replay",
            model_versions={},
            fingerprint={"day": str(day), "salt": control_salt},
        )
    return result.targets


def answered(decisions: pd.DataFrame, truth: WorldTruth, history: pd.DataFrame, *, day: date,
             seed: int) -> pd.DataFrame:  # fmt: skip
    """The decisions with the simulator's outcome (``responded`` 0/1), fatigue included."""
    outcomes = answer(
        decisions,
        truth,
        recent=recent(history, decisions["customer_id"].to_numpy(), day),
        seed=seed,
    )
    responded = outcomes.set_index("contact_id")["outcome"] == "responded"
    return decisions.assign(responded=decisions["contact_id"].map(responded).astype(int))


def as_history(log: pd.DataFrame) -> pd.DataFrame:
    """Logged rows as contact history (what interaction_results gives the contact policy)."""
    return pd.DataFrame(
        {
            "customer_id": log["customer_id"].to_numpy(np.int64),
            "campaign_id": log["campaign_id"].to_numpy(object),
            "offer_type": log["offer_type"].to_numpy(object),
            "channel": log["channel"].to_numpy(object),
            "treated": (log["group"] == "treated").to_numpy(),
            "responded": log["responded"].astype(bool).to_numpy(),
            "contacted_at": pd.to_datetime(log["decided_at"]).to_numpy(),
            "answered": True,
            "group": log["group"].to_numpy(object),
        }
    )


def empty_history() -> pd.DataFrame:
    frame = as_history(
        pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype="int64"),
                "campaign_id": pd.Series([], dtype=object),
                "offer_type": pd.Series([], dtype=object),
                "channel": pd.Series([], dtype=object),
                "group": pd.Series([], dtype=object),
                "responded": pd.Series([], dtype="int64"),
                "decided_at": pd.Series([], dtype="datetime64[us]"),
            }
        )
    )
    return frame


@dataclass(frozen=True)
class LoopHistory:
    """A loop's history before its last decision, the last decision, and a candidate."""

    day: date
    history: pd.DataFrame
    campaigns: list
    scores: pd.DataFrame
    last: pd.DataFrame  # the last cycle's decisions (not answered)
    actions: pd.DataFrame  # the candidate's actions on the last date (half caps)
    true_values: np.ndarray  # the truth of each candidate action (fatigue from the history)
    economics: dict  # margin and cost of the candidate's campaigns
    deployed_economics: dict  # margin and cost of the deployed campaigns
    fresh_controls: bool

    @property
    def truth(self) -> float:
        return float(self.true_values.sum())


def loop_history(
    truth: WorldTruth, folder: Path, *, cycles: int, fresh_controls: bool, seed: int = 11,
    exploration: float = 0.1,
) -> LoopHistory:  # fmt: skip
    """Run ``cycles - 1`` answered weekly decisions, then make the last one."""
    campaigns = write_campaigns(folder / "deployed")
    half = write_campaigns(folder / "half", cap_factor=0.5, suffix="_half")
    scores = model_scores(truth)
    history = empty_history()
    day = START
    for cycle in range(cycles):
        day = START + timedelta(days=7 * cycle)
        salt = day.isoformat() if fresh_controls else None
        decisions = decide(
            campaigns, truth, scores, history, day=day, exploration=exploration, control_salt=salt
        )
        if cycle == cycles - 1:
            break
        log = answered(decisions, truth, history, day=day, seed=seed + cycle)
        history = pd.concat([history, as_history(log)], ignore_index=True)
    candidate = decide(half, truth, scores, history, day=day, exploration=0.0, control_salt=None)
    actions = candidate[list(off_policy.CANDIDATE_COLUMNS)].reset_index(drop=True)
    values = action_values(
        truth, actions, economics_of(half), recent=recent(history, actions["customer_id"], day)
    )

    def money(items: list) -> dict:
        return {
            "margin": {c.campaign_id: c.margin_per_response for c in items},
            "cost": {c.campaign_id: c.cost_per_contact for c in items},
        }

    return LoopHistory(
        day, history, campaigns, scores, decisions, actions, values, money(half), money(campaigns),
        fresh_controls,
    )  # fmt: skip


def replay(setting: LoopHistory, truth: WorldTruth, *, repeat: int) -> pd.DataFrame:
    """The last decision log, answered with seed ``repeat``; with fresh controls, re-decided
    first with fresh control and exploration draws (the design's own randomisation)."""
    decisions = setting.last
    if setting.fresh_controls:
        with exploration_salt(f"replay-{repeat}"):
            decisions = decide(
                setting.campaigns, truth, setting.scores, setting.history, day=setting.day,
                exploration=0.1, control_salt=f"{setting.day}:replay-{repeat}",
            )  # fmt: skip
    return answered(decisions, truth, setting.history, day=setting.day, seed=10_000 + repeat)


def arm_design(setting: LoopHistory, log: pd.DataFrame) -> dict:
    """What the estimators are told of the log's arms (as ``cx strategy evaluate`` reads
    them): which earlier arms persistent campaigns fixed, and the control shares."""
    persistent = persistent_draws(log, setting.campaigns)
    return {
        "revealed": off_policy.revealed_pairs(
            setting.history, persistent, day=pd.Timestamp(setting.day)
        ),
        "control_share": {c.campaign_id: c.control_share for c in setting.campaigns},
    }


def estimates(
    setting: LoopHistory, log: pd.DataFrame, truth: WorldTruth, *, design: bool = True
) -> dict:
    """Every estimator of the candidate's value on one replayed log (``design``: told the
    log's arm design; without it, every logged arm is taken as drawn at this run)."""
    return off_policy.evaluate(
        log, setting.actions, population=truth.customer_id, **setting.economics,
        **(arm_design(setting, log) if design else {}),
    )  # fmt: skip
