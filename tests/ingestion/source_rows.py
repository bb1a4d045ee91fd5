"""Small hand-made source databases for ingestion tests, with room to inject bad rows."""

from __future__ import annotations

import copy

import sqlalchemy as sa

from cx_pipelines import source_schema


def loose_metadata(*, schema: str | None = None) -> sa.MetaData:
    """The source tables without key constraints, as an extract may arrive (duplicates allowed)."""
    metadata = sa.MetaData(schema=schema)
    for table in source_schema.SOURCE_TABLES:
        sa.Table(table.name, metadata, *(sa.Column(c.name, c.type) for c in table.columns))
    return metadata


def valid_rows() -> dict[str, list[dict]]:
    """A tiny consistent bank: 4 customers, 5 accounts and some activity of each kind."""
    customers = [
        {"customer_id": i, "customer_type": kind, "region": region, "birth_year": year,
         "annual_income": income, "joined_on": joined, "email": f"customer{i}@example.com"}
        for i, kind, region, year, income, joined in [
            (1, "mass_market", "north", 1980, 42000.0, "2015-03-01"),
            (2, "affluent", "south", 1965, 180000.0, "2010-07-15"),
            (3, "student", "east", 2003, 9000.0, "2024-09-01"),
            (4, "senior", "west", 1950, None, "1999-12-31"),
        ]
    ]
    accounts = [
        {"account_id": a, "customer_id": c, "product_type": p, "opened_on": o, "status": s,
         "balance": b, "credit_limit": lim, "days_past_due": d, "interest_rate": r}
        for a, c, p, o, s, b, lim, d, r in [
            (10, 1, "credit_card", "2016-01-10", "open", 1200.5, 5000.0, 0, 19.9),
            (11, 1, "checking", "2015-03-01", "open", -150.0, None, 0, 0.0),
            (20, 2, "mortgage", "2011-05-05", "open", 250000.0, None, 0, 3.1),
            (30, 3, "checking", "2024-09-01", "open", 310.0, None, 0, 0.0),
            (40, 4, "savings", "2000-01-01", "closed", 0.0, None, None, 1.2),
        ]
    ]
    transactions = [
        {"transaction_id": 100 + i, "account_id": a, "customer_id": c,
         "occurred_at": f"2025-0{1 + i % 9}-1{i % 10} 12:30:00", "amount": amt,
         "merchant_category": m, "channel": ch}
        for i, (a, c, amt, m, ch) in enumerate([
            (10, 1, 25.4, "groceries", "pos"),
            (10, 1, 80.0, "dining", "ecommerce"),
            (11, 1, 200.0, "utilities", "mobile"),
            (30, 3, 12.99, "entertainment", "ecommerce"),
            (30, 3, 60.0, "groceries", "atm"),
            (20, 2, 1500.0, "home", "branch"),
        ])
    ]
    interactions = [
        {"interaction_id": 500 + i, "customer_id": c, "session_id": s, "occurred_at": t,
         "channel": ch, "interaction_type": it, "product_type": p}
        for i, (c, s, t, ch, it, p) in enumerate([
            (1, 9001, "2025-02-01 09:00:00", "web", "login", None),
            (1, 9001, "2025-02-01 09:01:00", "web", "product_view", "credit_card"),
            (3, None, "2025-03-03 18:00:00", "call_centre", "complaint", None),
            (4, 9002, "2025-04-04 10:00:00", "mobile_app", "offer_presented", "savings"),
        ])
    ]
    inbound_events = [
        {"event_id": 700 + i, "customer_id": c, "account_id": a, "event_type": e,
         "occurred_at": t, "amount": amt}
        for i, (c, a, e, t, amt) in enumerate([
            (1, 10, "cycle_date", "2025-02-28 00:00:00", None),
            (2, None, "address_change", "2025-03-15 11:00:00", None),
            (1, 10, "credit_request", "2025-05-01 08:00:00", 2000.0),
        ])
    ]
    offer_history = [
        {"contact_id": 900 + i, "campaign_id": camp, "customer_id": c, "offer_type": o,
         "channel": ch, "treated": tr, "contacted_at": t, "responded": r, "revenue": rev}
        for i, (camp, c, o, ch, tr, t, r, rev) in enumerate([
            ("2025-Q1-cards", 1, "credit_card", "email", True, "2025-01-20 10:00:00", True, 120.0),
            ("2025-Q1-cards", 2, "credit_card", "email", False, "2025-01-20 10:00:00", False, None),
            ("2025-Q2-savings", 4, "savings", "branch", True, "2025-04-02 10:00:00", False, 0.0),
        ])
    ]
    return copy.deepcopy({
        "customers": customers, "accounts": accounts, "transactions": transactions,
        "interactions": interactions, "inbound_events": inbound_events,
        "offer_history": offer_history,
    })


def write_source(url: str, rows: dict[str, list[dict]], *, schema: str | None = None,
                 tables: list[str] | None = None) -> None:
    """Create the source tables (no key constraints) in ``url`` and insert ``rows`` raw."""
    metadata = loose_metadata(schema=schema)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            for table in metadata.sorted_tables:
                if tables is not None and table.name not in tables:
                    continue
                table.drop(connection, checkfirst=True)
                table.create(connection)
                records = rows.get(table.name, [])
                if records:
                    # Untyped columns: values reach the driver as given, text in a float included.
                    columns = [column.name for column in table.columns]
                    raw_table = sa.table(table.name, *(sa.column(c) for c in columns), schema=schema)
                    connection.execute(
                        sa.insert(raw_table),
                        [{column: record.get(column) for column in columns} for record in records],
                    )
    finally:
        engine.dispose()
