"""Hand-made warehouse tables, typed as ingestion writes them, for the features tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cx_pipelines import source_schema


def _str(values: list) -> pd.Series:
    return pd.Series(values, dtype="str")


def make_customers(rows: list[tuple[int, str]]) -> pd.DataFrame:
    """Customers from (customer_id, joined_on) pairs."""
    return pd.DataFrame(
        {
            "customer_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "customer_type": _str(["mass_market"] * len(rows)),
            "region": _str(["north"] * len(rows)),
            "birth_year": pd.Series([1980] * len(rows), dtype="int64"),
            "annual_income": pd.Series([50_000.0] * len(rows)),
            "joined_on": pd.to_datetime([r[1] for r in rows]),
            "email": _str([f"c{r[0]}@example.com" for r in rows]),
        }
    )


def make_accounts(rows: list[tuple]) -> pd.DataFrame:
    """(account_id, customer_id, product_type, status, balance, credit_limit, days_past_due)."""
    return pd.DataFrame(
        {
            "account_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "customer_id": pd.Series([r[1] for r in rows], dtype="int64"),
            "product_type": _str([r[2] for r in rows]),
            "opened_on": pd.to_datetime(["2023-01-01"] * len(rows)),
            "status": _str([r[3] for r in rows]),
            "balance": pd.Series([r[4] for r in rows], dtype="float64"),
            "credit_limit": pd.Series([r[5] for r in rows], dtype="float64"),
            "days_past_due": pd.Series([r[6] for r in rows], dtype="int64"),
            "interest_rate": pd.Series([0.1] * len(rows)),
        }
    )


def make_transactions(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, occurred_at, amount, merchant_category, channel[, account_id])."""
    return pd.DataFrame(
        {
            "transaction_id": pd.Series(range(1, len(rows) + 1), dtype="int64"),
            "account_id": pd.Series([r[5] if len(r) > 5 else 0 for r in rows], dtype="int64"),
            "customer_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "occurred_at": pd.to_datetime([r[1] for r in rows]),
            "amount": pd.Series([r[2] for r in rows], dtype="float64"),
            "merchant_category": _str([r[3] for r in rows]),
            "channel": _str([r[4] for r in rows]),
        }
    )


def make_interactions(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, occurred_at, channel, interaction_type)."""
    return pd.DataFrame(
        {
            "interaction_id": pd.Series(range(1, len(rows) + 1), dtype="int64"),
            "customer_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "session_id": pd.Series(range(1, len(rows) + 1), dtype="int64"),
            "occurred_at": pd.to_datetime([r[1] for r in rows]),
            "channel": _str([r[2] for r in rows]),
            "interaction_type": _str([r[3] for r in rows]),
            "product_type": _str([None] * len(rows)),
        }
    )


def make_events(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, account_id or None, event_type, occurred_at)."""
    return pd.DataFrame(
        {
            "event_id": pd.Series(range(1, len(rows) + 1), dtype="int64"),
            "customer_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "account_id": pd.Series([r[1] for r in rows], dtype="Int64"),
            "event_type": _str([r[2] for r in rows]),
            "occurred_at": pd.to_datetime([r[3] for r in rows]),
            "amount": pd.Series([np.nan] * len(rows)),
        }
    )


def make_offers(rows: list[tuple]) -> pd.DataFrame:
    """(customer_id, treated, responded, contacted_at)."""
    return pd.DataFrame(
        {
            "contact_id": pd.Series(range(1, len(rows) + 1), dtype="int64"),
            "campaign_id": _str(["spring"] * len(rows)),
            "customer_id": pd.Series([r[0] for r in rows], dtype="int64"),
            "offer_type": _str(["credit_card"] * len(rows)),
            "channel": _str(["email"] * len(rows)),
            "treated": pd.Series([r[1] for r in rows], dtype="bool"),
            "contacted_at": pd.to_datetime([r[3] for r in rows]),
            "responded": pd.Series([r[2] for r in rows], dtype="bool"),
            "revenue": pd.Series([0.0] * len(rows)),
        }
    )


@pytest.fixture
def small_bank() -> dict[str, pd.DataFrame]:
    """Four customers with known answers (see test_customer_kpis) plus one unknown to customers.

    Customer 1 spends recently (growing), 2 is delinquent and spent once long ago,
    3 never spends, 5 spent a lot five months ago and little lately (shrinking);
    customer 4 transacts without being in the customers table.
    """
    return {
        "customers": make_customers(
            [(1, "2020-01-01"), (2, "2024-01-01"), (3, "2026-09-15"), (5, "2019-05-05")]
        ),
        "accounts": make_accounts(
            [
                (11, 1, "credit_card", "open", 500.0, 1000.0, 0),
                (12, 1, "checking", "open", 2000.0, None, 0),
                (21, 2, "credit_card", "open", 900.0, 1000.0, 45),
                (22, 2, "savings", "closed", 10_000.0, None, 0),
                (51, 5, "savings", "open", 300.0, None, 0),
            ]
        ),
        "transactions": make_transactions(
            [
                (1, "2026-09-20 10:00", 100.0, "groceries", "pos", 11),
                (1, "2026-09-20 15:00", 50.0, "dining", "ecommerce", 11),
                (1, "2026-06-01 12:00", 30.0, "groceries", "pos", 12),
                (2, "2025-01-10 09:00", 200.0, "travel", "ecommerce", 21),
                (4, "2026-08-01 09:00", 10.0, "fuel", "pos"),
                (5, "2026-05-01 09:00", 400.0, "electronics", "pos", 51),
                (5, "2026-05-02 09:00", 300.0, "electronics", "pos", 51),
                (5, "2026-09-01 09:00", 20.0, "groceries", "pos", 51),
            ]
        ),
        "interactions": make_interactions(
            [
                (1, "2026-09-01 08:00", "web", "login"),
                (1, "2026-09-02 08:00", "web", "login"),
                (1, "2026-03-02 08:00", "call_centre", "complaint"),
                (2, "2026-09-02 08:00", "mobile_app", "product_view"),
            ]
        ),
        "inbound_events": make_events(
            [(2, 21, "late_payment", "2026-08-15"), (1, None, "address_change", "2026-01-01")]
        ),
        "offer_history": make_offers(
            [(1, True, True, "2026-07-01"), (2, False, False, "2026-07-01")]
        ),
    }


@pytest.fixture
def random_bank() -> dict[str, pd.DataFrame]:
    """A seeded random bank of 60 customers: enough for clusters and opportunities."""
    rng = np.random.default_rng(7)
    customers = make_customers(
        [
            (i, str(pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(d))))
            for i, d in zip(range(1, 61), rng.integers(0, 2000, 60), strict=True)
        ]
    )
    accounts = make_accounts(
        [
            (
                100 + i,
                i,
                str(rng.choice(source_schema.PRODUCT_TYPES)),
                "open",
                float(rng.gamma(2, 500)),
                2000.0 if i % 3 == 0 else None,
                int(rng.choice([0, 0, 40])),
            )
            for i in range(1, 61)
        ]
    )
    categories = np.array(source_schema.MERCHANT_CATEGORIES)
    rows = []
    for customer in range(1, 56):  # customers 56..60 never spend
        favourite = categories[customer % 3]
        for _ in range(int(rng.integers(1, 15))):
            when = pd.Timestamp("2025-01-01") + pd.Timedelta(hours=int(rng.integers(0, 600 * 24)))
            category = favourite if rng.random() < 0.6 else str(rng.choice(categories))
            rows.append(
                (customer, str(when), float(rng.gamma(2, 40)), category, "pos", 100 + customer)
            )
    transactions = make_transactions(rows)
    interactions = make_interactions(
        [(int(c), "2026-01-01", "web", "login") for c in rng.integers(1, 61, 80)]
    )
    events = make_events([(2, 102, "late_payment", "2026-02-01")])
    offers = make_offers([(3, True, False, "2026-03-01")])
    return {
        "customers": customers,
        "accounts": accounts,
        "transactions": transactions,
        "interactions": interactions,
        "inbound_events": events,
        "offer_history": offers,
    }


@pytest.fixture
def build():
    """The table builders of this module, for tests that plant their own patterns."""
    from types import SimpleNamespace

    return SimpleNamespace(
        customers=make_customers,
        accounts=make_accounts,
        transactions=make_transactions,
        interactions=make_interactions,
        events=make_events,
        offers=make_offers,
    )
