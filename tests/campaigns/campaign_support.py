"""Small synthetic targeting inputs (population, scores, contact history, campaigns)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import numpy as np
import pandas as pd

from cx_pipelines.campaigns.catalog import Campaign
from cx_pipelines.campaigns.rules import ATTRIBUTES, parse_rule
from cx_pipelines.campaigns.targeting import TargetingSettings, target
from cx_pipelines.source_schema import CUSTOMER_TYPES, OFFER_CHANNELS, OFFER_TYPES

DAY = date(2026, 10, 1)


def population(size: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"customer_id": np.arange(1, size + 1, dtype=np.int64) * 7})
    for name, kind in ATTRIBUTES.items():
        frame[name] = rng.uniform(0, 100, size) if kind == "number" else None
    frame["customer_type"] = rng.choice(CUSTOMER_TYPES, size)
    frame["age"] = rng.integers(16, 90, size).astype(float)
    frame["holds_credit_card"] = rng.integers(0, 2, size).astype(float)
    return frame


def scores(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed + 1)
    result = pd.DataFrame({"customer_id": frame["customer_id"]})
    for offer in OFFER_TYPES:
        for channel in OFFER_CHANNELS:
            base = rng.beta(2, 20, len(frame))
            result[f"propensity__{offer}__{channel}"] = base
            result[f"uplift__{offer}__{channel}"] = base * rng.uniform(-0.3, 0.8, len(frame))
    return result


def history(frame: pd.DataFrame, pairs: dict[tuple[str, str], int]) -> pd.DataFrame:
    """``count`` treated, responded contacts for each (offer, channel), a month ago."""
    rows = []
    ids = frame["customer_id"].to_numpy()
    for (offer, channel), count in pairs.items():
        for n in range(count):
            rows.append((int(ids[n % len(ids)]), offer, channel, True, True))
    result = pd.DataFrame(
        rows, columns=["customer_id", "offer_type", "channel", "treated", "responded"]
    )
    result["contacted_at"] = pd.Timestamp(DAY) - pd.Timedelta(days=200)
    result["campaign_id"] = "past"
    return result.astype({"treated": bool, "responded": bool})


def campaign(campaign_id: str, offer: str, channel: str, **changes) -> Campaign:
    base = Campaign(
        campaign_id=campaign_id,
        offer=offer,
        treatment=f"{offer}_offer",
        channel=channel,
        eligibility=parse_rule({"all": [{"attribute": "age", "at_least": 18}]}),
        cost_per_contact=0.5,
        margin_per_response=100.0,
        budget=np.inf,
        volume_cap=40.0,
        control_share=0.2,
        start=date(2026, 9, 1),
        end=date(2026, 12, 31),
        salt=campaign_id,
        description="",
        file=f"{campaign_id}.yaml",
        content_hash="0" * 12,
    )
    return replace(base, **changes)


def competing_campaigns() -> list[Campaign]:
    return [
        campaign("card_email", "credit_card", "email", volume_cap=60.0),
        campaign("card_app", "credit_card", "mobile_app", budget=10.0, volume_cap=np.inf),
        campaign("loan_call", "personal_loan", "call_centre", cost_per_contact=3.0, budget=90.0),
        campaign("savings_web", "savings", "web", volume_cap=25.0, control_share=0.5),
        campaign("old", "mortgage", "branch", start=date(2026, 1, 1), end=date(2026, 3, 1)),
    ]


def run(
    frame, score_frame, contacts, campaigns, *, caps=(), decline_limit=None, experiment=None,
    **settings,
):  # fmt: skip
    return target(
        campaigns,
        frame,
        score_frame,
        contacts,
        caps=list(caps),
        decline_limit=decline_limit,
        settings=TargetingSettings(**{"decision_date": DAY, **settings}),
        strategy_hash="strategyhash",
        model_versions={"propensity_model_version": "cx_propensity/1"},
        fingerprint={"test": 1},
        experiment=experiment,
    )
