"""Seeded random customers, accounts and contact histories for engine tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def small_bank_population(
    size: int, *, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Customers, accounts (0-4 cards, 0-2 savings) and contacts for the small_bank example."""
    rng = np.random.default_rng(seed)
    ids = [f"C{i:06d}" for i in range(size)]

    def with_nulls(values, share=0.05):
        values = np.asarray(values, dtype=object)
        values[rng.random(len(values)) < share] = None
        return values

    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "income": with_nulls(rng.choice([15000, 25000, 60000, 100000, 150000], size)),
            "age": with_nulls(rng.integers(16, 90, size)),
            "months_on_book": with_nulls(rng.integers(0, 200, size)),
            "region": with_nulls(rng.choice(["north", "south", "west"], size)),
            "scores.propensity_credit_card": with_nulls(rng.random(size).round(3)),
            "scores.uplift_savings": with_nulls((rng.random(size) * 0.1).round(4)),
        }
    )
    rows = []
    for customer_id in ids:
        for k in range(int(rng.integers(0, 5))):
            rows.append(
                {
                    "account_id": f"{customer_id}-C{k}",
                    "customer_id": customer_id,
                    "account_type": "credit_card",
                    "balance": float(rng.choice([0, 300, 500, 700, 6000])),
                    "credit_limit": float(rng.choice([300, 500, 700, 1000])),
                    "behaviour_score": None
                    if rng.random() < 0.1
                    else float(rng.integers(200, 900)),
                    "direct_deposit": None,
                }
            )
        for k in range(int(rng.integers(0, 3))):
            rows.append(
                {
                    "account_id": f"{customer_id}-S{k}",
                    "customer_id": customer_id,
                    "account_type": "savings",
                    "balance": float(rng.integers(0, 5000)),
                    "credit_limit": None,
                    "behaviour_score": None,
                    "direct_deposit": bool(rng.random() < 0.5),
                }
            )
    accounts = pd.DataFrame(rows)
    if len(accounts):
        accounts = accounts.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    contacts = pd.DataFrame(
        {
            "customer_id": rng.choice(ids, size * 2),
            "channel": rng.choice(["email", "call_centre", "branch"], size * 2),
            "treatment": rng.choice(
                ["credit_card_offer", "savings_offer", "retention_call"], size * 2
            ),
            "days_ago": rng.integers(0, 120, size * 2),
            "declined": rng.random(size * 2) < 0.6,
        }
    )
    return customers, accounts, contacts


def records_one_by_one(evaluate, strategy, customers, accounts, contacts, **options) -> list[dict]:
    """Per-record results for every customer of the frames, accounts in frame order."""
    by_customer = (
        {
            cid: group.to_dict("records")
            for cid, group in accounts.groupby("customer_id", sort=False)
        }
        if len(accounts)
        else {}
    )
    history = (
        {
            cid: group.to_dict("records")
            for cid, group in contacts.groupby("customer_id", sort=False)
        }
        if contacts is not None and len(contacts)
        else {}
    )
    results = []
    for customer in customers.to_dict("records"):
        cid = customer["customer_id"]
        results.append(
            evaluate(
                strategy,
                customer=customer,
                accounts=by_customer.get(cid, []),
                contact_history=history.get(cid, []),
                **options,
            )
        )
    return results
