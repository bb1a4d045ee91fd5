"""The contact policy: the vectorised form equals a plain per-customer reading of the rules,
and the real-time service's contacts (its decision log) count against the batch caps."""

from __future__ import annotations

import json
from pathlib import Path

import campaign_support as support
import numpy as np
import pandas as pd
import pytest

from cx_pipelines.campaigns.population import (
    contact_history,
    contact_policy,
    service_contacts,
)

DAY = pd.Timestamp("2026-10-01")
OFFERS = ("credit_card", "savings", "mortgage")
CHANNELS = ("email", "web", "branch")


def reference_policy(customer_ids, campaigns, history, *, decision_date, caps, decline_limit):
    """The rules read literally: for each customer, campaign and rule, count its contacts."""
    allowed = np.ones((len(customer_ids), len(campaigns)), dtype=bool)
    reasons = {c.campaign_id: {} for c in campaigns}
    rows = history.to_dict("records")
    by_customer: dict[int, list[dict]] = {}
    for row in rows:
        by_customer.setdefault(row["customer_id"], []).append(row)
    for j, campaign in enumerate(campaigns):
        for i, customer in enumerate(customer_ids):
            mine = [
                r
                for r in by_customer.get(customer, [])
                if r["treated"] and r["contacted_at"] < decision_date
            ]
            blocked = []
            for channel, maximum, period_days in caps:
                if channel not in ("*", campaign.channel):
                    continue
                start = decision_date - pd.Timedelta(days=period_days)
                count = sum(
                    1
                    for r in mine
                    if r["contacted_at"] >= start and (channel == "*" or r["channel"] == channel)
                )
                if count >= maximum:
                    blocked.append(f"contact cap {channel}: {maximum} per {period_days:g} days")
            if decline_limit is not None:
                declines, within = decline_limit
                start = decision_date - pd.Timedelta(days=within)
                count = sum(
                    1
                    for r in mine
                    if r["contacted_at"] >= start
                    and not r["responded"]
                    and r.get("answered", True)
                    and r["offer_type"] == campaign.offer
                )
                if count >= declines:
                    blocked.append(
                        f"suppressed: {declines} declines of {campaign.offer} in {within:g} days"
                    )
            if blocked:
                allowed[i, j] = False
                first = blocked[0]  # the first rule that blocks is the reason counted
                reasons[campaign.campaign_id][first] = (
                    reasons[campaign.campaign_id].get(first, 0) + 1
                )
    return allowed, reasons


def random_history(rng: np.random.Generator, customers: int, rows: int) -> pd.DataFrame:
    ids = rng.integers(1, customers + 20, rows)  # some contacts of customers not decided
    frame = pd.DataFrame(
        {
            "customer_id": ids.astype(np.int64),
            "offer_type": rng.choice([*OFFERS, None], rows, p=[0.3, 0.3, 0.3, 0.1]),
            "channel": rng.choice([*CHANNELS, None], rows, p=[0.4, 0.3, 0.25, 0.05]),
            "treated": rng.random(rows) < 0.8,
            "contacted_at": DAY - pd.to_timedelta(rng.integers(-3 * 86400, 60 * 86400, rows), "s"),
            "responded": rng.random(rows) < 0.3,
            "campaign_id": "past",
        }
    )
    if rng.random() < 0.5:
        frame["answered"] = rng.random(rows) < 0.8
    exact = rng.random(rows) < 0.05  # contacts exactly on a window's edge
    frame.loc[exact, "contacted_at"] = DAY - pd.Timedelta(days=7)
    return frame


def test_the_vectorised_policy_equals_the_rules_read_customer_by_customer() -> None:
    blocked = reasons_seen = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        customers = int(rng.integers(1, 60))
        history = random_history(rng, customers, int(rng.integers(0, 12 * customers)))
        customer_ids = np.sort(rng.choice(np.arange(1, customers + 40), customers, replace=False))
        campaigns = [
            support.campaign(f"c{k}", rng.choice(OFFERS), rng.choice(CHANNELS))
            for k in range(int(rng.integers(0, 5)))
        ]
        caps = [
            (
                str(rng.choice(["*", *CHANNELS])),
                int(rng.integers(1, 6)),
                float(rng.choice([7, 30, 2.5])),
            )
            for _ in range(int(rng.integers(0, 3)))
        ]
        decline_limit = (int(rng.integers(1, 4)), float(rng.choice([30, 90]))) if seed % 4 else None
        options = dict(decision_date=DAY, caps=caps, decline_limit=decline_limit)

        fast = contact_policy(customer_ids, campaigns, history, **options)
        allowed, reasons = reference_policy(customer_ids, campaigns, history, **options)

        assert np.array_equal(fast.allowed, allowed), f"seed {seed}"
        assert fast.reasons == reasons, f"seed {seed}"
        blocked += int((~allowed).sum())
        reasons_seen += sum(len(found) for found in reasons.values())
    assert blocked > 200 and reasons_seen > 30, (blocked, reasons_seen)  # the cases do block


def test_caps_count_contacts_inside_the_window_only() -> None:
    history = pd.DataFrame(
        {
            "customer_id": [1, 1, 2, 2, 3, 3],
            "offer_type": "savings",
            "channel": "email",
            "treated": [True, True, True, True, True, False],
            "contacted_at": [DAY - pd.Timedelta(days=d) for d in (1, 7, 1, 8, 1, 2)],
            "responded": True,
        }
    )
    campaigns = [support.campaign("e", "savings", "email"), support.campaign("w", "savings", "web")]
    outcome = contact_policy(
        np.array([1, 2, 3]), campaigns, history, decision_date=DAY,
        caps=[("email", 2, 7.0)], decline_limit=None,
    )  # fmt: skip
    # 1: two email contacts within 7 days; 2: one is 8 days old; 3: a control is no contact
    assert outcome.allowed.tolist() == [[False, True], [True, True], [True, True]]
    assert outcome.reasons == {"e": {"contact cap email: 2 per 7 days": 1}, "w": {}}


def write_service_log(folder: Path, entries: list[dict], *, cut_short: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "20260930T000000-123-abcdef.jsonl"
    text = "".join(json.dumps(entry) + "\n" for entry in entries)
    if cut_short:
        text += '{"decision_id": "cut-sh'
    path.write_text(text)
    return path


def service_entry(number: int, customer: int, channel: str, *, days_ago: float, **extra) -> dict:
    decided = (DAY - pd.Timedelta(days=days_ago)).tz_localize("UTC")
    entry = {
        "decision_id": f"svc-{number}",
        "customer_id": str(customer),
        "channel": channel,
        "interaction_type": "login",
        "treatment": "savings_offer",
        "offer_type": "savings",
        "rank": 1,
        "campaign_id": "realtime",
        "selection_probability": 1.0,
        "decided_at": decided.isoformat(timespec="microseconds"),
        "strategy_hash": "h",
        "model_versions": {"propensity": "3"},
        "known_customer": True,
        "treatments": [{"treatment": "savings_offer", "rank": 1, "terms": {"propensity": 0.1}}],
        "trace": {"segment": "young", "path": ["a", "b"]},
    }
    return {**entry, **extra}


def offer_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": [1],
            "campaign_id": ["past"],
            "customer_id": [5],
            "offer_type": ["savings"],
            "channel": ["email"],
            "treated": [True],
            "contacted_at": [DAY - pd.Timedelta(days=2)],
            "responded": [False],
            "revenue": [0.0],
        }
    )


@pytest.mark.parametrize("cut_short", [False, True])
def test_service_contacts_are_read_from_its_decision_log(tmp_path: Path, cut_short) -> None:
    entries = [
        service_entry(1, 5, "email", days_ago=1),
        service_entry(2, 5, "email", days_ago=3),
        service_entry(3, 6, "email", days_ago=1, known_customer=False),  # fallback: no contact
        service_entry(4, 7, "web", days_ago=1, rank=None, offer_type=None),  # nothing shown
        service_entry(5, 8, "web", days_ago=1, contact_recorded=False),
        service_entry(2, 5, "email", days_ago=3),  # a repeated line counts once
    ]
    write_service_log(tmp_path / "decision_log", entries, cut_short=cut_short)

    contacts = service_contacts(tmp_path / "decision_log")

    assert contacts["contact_id"].tolist() == ["svc-1", "svc-2"]
    assert contacts["customer_id"].tolist() == [5, 5]
    assert contacts["treated"].all() and not contacts["answered"].any()
    assert contacts["contacted_at"].tolist() == [
        DAY - pd.Timedelta(days=1),
        DAY - pd.Timedelta(days=3),
    ]
    assert service_contacts(tmp_path / "nowhere").empty


def test_a_customer_with_n_service_contacts_on_a_channel_is_capped_in_the_batch(
    tmp_path: Path,
) -> None:
    # email cap 2 per 7 days: customer 5 had one batch and one service email (capped),
    # 6 two service emails (capped), 7 one (allowed); 8 had eight web decisions (the "*" cap)
    entries = [
        service_entry(1, 5, "email", days_ago=1),
        service_entry(2, 6, "email", days_ago=1),
        service_entry(3, 6, "email", days_ago=2),
        service_entry(4, 7, "email", days_ago=1),
        *(service_entry(10 + k, 8, "web", days_ago=k + 1) for k in range(8)),
    ]
    write_service_log(tmp_path / "decision_log", entries)
    campaigns = [
        support.campaign("e", "savings", "email"),
        support.campaign("b", "savings", "branch"),
    ]
    caps = [("email", 2, 7.0), ("*", 8, 30.0)]
    ids = np.array([5, 6, 7, 8])

    batch_only = contact_policy(
        ids, campaigns, contact_history(offer_history(), None), decision_date=DAY,
        caps=caps, decline_limit=(3, 90.0),
    )  # fmt: skip
    history = contact_history(offer_history(), None, service_contacts(tmp_path / "decision_log"))
    both = contact_policy(
        ids, campaigns, history, decision_date=DAY, caps=caps, decline_limit=(3, 90.0)
    )

    assert batch_only.allowed.all()
    assert both.allowed.tolist() == [[False, True], [False, True], [True, True], [False, False]]
    assert both.reasons["e"] == {
        "contact cap email: 2 per 7 days": 2,
        "contact cap *: 8 per 30 days": 1,
    }
    # service contacts still waiting for an outcome are not declines
    assert not any("suppressed" in reason for reason in both.reasons["b"])


def test_an_answered_service_contact_is_counted_once_with_its_outcome(tmp_path: Path) -> None:
    entries = [service_entry(k, 5, "email", days_ago=k + 1) for k in range(3)]
    write_service_log(tmp_path / "decision_log", entries)
    results = pd.DataFrame(
        {
            "contact_id": ["svc-0", "svc-1"],  # their responses came back through the inbox
            "campaign_id": "realtime",
            "customer_id": [5, 5],
            "offer_type": "savings",
            "channel": "email",
            "treated": True,
            "contacted_at": [DAY - pd.Timedelta(days=1), DAY - pd.Timedelta(days=2)],
            "responded": [False, False],
            "revenue": 0.0,
        }
    )
    service = service_contacts(tmp_path / "decision_log")
    history = contact_history(offer_history(), results, service)

    assert len(history) == 1 + 2 + 1
    assert history["answered"].tolist() == [True, True, True, False]
    # three declines of savings (one batch, two answered service contacts) within 90 days
    outcome = contact_policy(
        np.array([5]), [support.campaign("b", "savings", "branch")], history,
        decision_date=DAY, caps=[], decline_limit=(3, 90.0),
    )  # fmt: skip
    assert outcome.reasons == {"b": {"suppressed: 3 declines of savings in 90 days": 1}}
