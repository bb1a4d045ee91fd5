"""What targeting reads: contact history with interaction results, pair positives, draws."""

from __future__ import annotations

import campaign_support as support
import numpy as np
import pandas as pd

from cx_pipelines.campaigns.draws import contact_ids, uniform
from cx_pipelines.campaigns.exploration import pair_positives
from cx_pipelines.campaigns.population import contact_history


def offer_history() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "contact_id": [1, 2, 3],
            "campaign_id": ["C01", "C01", "C02"],
            "customer_id": [7, 14, 7],
            "offer_type": ["credit_card", "credit_card", "savings"],
            "channel": ["email", "email", "web"],
            "treated": [True, False, True],
            "contacted_at": pd.to_datetime(["2026-01-01", "2026-01-01", "2026-02-01"]),
            "responded": [True, True, False],
            "revenue": [180.0, 0.0, 0.0],
        }
    )


def interaction_results() -> pd.DataFrame:
    """Results fed back by the campaigns (INTERFACES.md §3): offer_history columns and more."""
    frame = pd.DataFrame(
        {
            "contact_id": [900, 901],
            "campaign_id": ["mortgage_email", "mortgage_email"],
            "customer_id": [7, 21],
            "offer_type": ["mortgage", "mortgage"],
            "channel": ["email", "email"],
            "treated": [True, True],
            "contacted_at": pd.to_datetime(["2026-10-01", "2026-10-01"]),
            "responded": [True, False],
            "revenue": [2500.0, 0.0],
        }
    )
    return frame.assign(
        run_key="2026-10-01-abcdef0123",
        group="treated",
        selection_probability=0.9,
        exploration=True,
        responded_at=pd.to_datetime(["2026-10-05", "2026-10-09"]),
        strategy_hash="strategyhash",
    )


def test_history_appends_interaction_results_and_counts_treated_positives() -> None:
    history = contact_history(offer_history(), interaction_results())
    assert len(history) == 5
    campaigns = [
        support.campaign("a", "credit_card", "email"),
        support.campaign("b", "mortgage", "email"),
        support.campaign("c", "savings", "web"),
    ]
    # a control's response teaches nothing about the channel; a non-response is no positive
    assert pair_positives(history, campaigns).tolist() == [1, 1, 0]
    assert pair_positives(contact_history(offer_history(), None), campaigns).tolist() == [1, 0, 0]


def test_draws_are_fixed_by_id_and_salt_and_uniform() -> None:
    ids = np.arange(1, 20_001)
    first, again = uniform(ids, "salt"), uniform(ids, "salt")
    assert np.array_equal(first, again)
    assert ((first >= 0) & (first < 1)).all()
    assert abs(first.mean() - 0.5) < 0.01 and abs((first < 0.1).mean() - 0.1) < 0.01
    other = uniform(ids, "other salt")
    assert abs(np.corrcoef(first, other)[0, 1]) < 0.03
    assert (
        uniform(np.array([1]), "card_young_mobile")[0]
        == uniform(np.array([1, 2]), "card_young_mobile")[0]
    )
    keys = contact_ids(ids, campaign_id="a", run_key="2026-10-01-x")
    assert len(set(keys)) == len(ids) and (keys > 0).all()
    assert not set(keys) & set(contact_ids(ids, campaign_id="b", run_key="2026-10-01-x"))
