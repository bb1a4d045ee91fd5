"""Small hand-made source databases for ingestion tests, with room to inject bad rows."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import sqlalchemy as sa

from cx_pipelines import source_schema


def loose_metadata(*, schema: str | None = None) -> sa.MetaData:
    """The source tables without key constraints, as an extract may arrive (duplicates allowed)."""
    metadata = sa.MetaData(schema=schema)
    for table in (*source_schema.SOURCE_TABLES, *source_schema.RESPONSE_TABLES):
        sa.Table(table.name, metadata, *(sa.Column(c.name, c.type) for c in table.columns))
    return metadata


def valid_rows() -> dict[str, list[dict]]:
    """A tiny consistent bank: 4 customers, 5 accounts and some activity of each kind."""
    # fmt: off
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
            (10, 1, "credit_card", "2016-01-10", "open", 1200.5, 5000.0, 0, 0.199),
            (11, 1, "checking", "2015-03-01", "open", -150.0, None, 0, 0.0),
            (20, 2, "mortgage", "2011-05-05", "open", 250000.0, None, 0, 0.031),
            (30, 3, "checking", "2024-09-01", "open", 310.0, None, 0, 0.0),
            (40, 4, "savings", "2000-01-01", "closed", 0.0, None, None, 0.012),
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
    # fmt: on
    return copy.deepcopy(
        {
            "customers": customers,
            "accounts": accounts,
            "transactions": transactions,
            "interactions": interactions,
            "inbound_events": inbound_events,
            "offer_history": offer_history,
        }
    )


def write_source(
    url: str,
    rows: dict[str, list[dict]],
    *,
    schema: str | None = None,
    tables: list[str] | None = None,
) -> None:
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
                    raw_table = sa.table(
                        table.name, *(sa.column(c) for c in columns), schema=schema
                    )
                    connection.execute(
                        sa.insert(raw_table),
                        [{column: record.get(column) for column in columns} for record in records],
                    )
    finally:
        engine.dispose()


@dataclass(frozen=True)
class BadRow:
    """A row injected into a source table and the rule that must quarantine it."""

    table: str
    row: dict
    rule: str
    sqlite_only: bool = False
    """Values PostgreSQL's column types refuse at insert (text in a float column, ...)."""


def bad_rows() -> list[BadRow]:
    """One or more bad rows per rule kind, each built from a valid row of its table."""
    good = valid_rows()
    template = {table: rows[0] for table, rows in good.items()}
    cases: list[BadRow] = []
    next_key = {
        "customers": 1000,
        "accounts": 2000,
        "transactions": 3000,
        "interactions": 4000,
        "inbound_events": 5000,
        "offer_history": 6000,
    }

    def add(table: str, rule: str, *, sqlite_only: bool = False, **changes) -> dict:
        key = source_schema.PRIMARY_KEYS[table]
        next_key[table] += 1
        row = {**template[table], key: next_key[table], **changes}
        cases.append(BadRow(table, row, rule, sqlite_only))
        return row

    add("customers", "customer_id_not_null", customer_id=None)
    add("customers", "customer_id_is_integer", sqlite_only=True, customer_id="C-17")
    add("customers", "customer_type_in_domain", customer_type="vip")
    vip = cases[-1].row["customer_id"]
    add("customers", "region_not_null", region=None)
    add("customers", "birth_year_in_range", birth_year=1850)
    add("customers", "birth_year_in_range", birth_year=2024)
    add("customers", "birth_year_is_integer", sqlite_only=True, birth_year="nineteen-eighty")
    add("customers", "annual_income_is_numeric", sqlite_only=True, annual_income="lots")
    add("customers", "annual_income_in_range", annual_income=-5.0)
    add("customers", "annual_income_in_range", sqlite_only=True, annual_income="inf")
    add("customers", "joined_on_not_in_future", joined_on="2099-01-01")
    add("customers", "joined_on_not_too_old", joined_on="1850-01-01")
    add("customers", "joined_on_is_date", sqlite_only=True, joined_on="31/12/2020")
    add("customers", "email_is_well_formed", email="customer.example.com")
    add("customers", "email_is_well_formed", email="customer@example.com\n")
    add("customers", "email_is_well_formed", email="cust\x07omer@example.com")

    add("accounts", "customer_id_exists", customer_id=999)
    add("accounts", "customer_id_exists", customer_id=vip)  # its customer was quarantined
    add("accounts", "balance_in_range", balance=5e12)
    add("accounts", "days_past_due_in_range", days_past_due=-3)
    add("accounts", "status_in_domain", status="frozen")
    frozen = cases[-1].row["account_id"]
    add("accounts", "credit_limit_in_range", credit_limit=-100.0)
    add("accounts", "interest_rate_in_range", interest_rate=19.9)
    add("accounts", "opened_on_not_null", opened_on=None)

    add("transactions", "amount_in_range", amount=-5.0)
    add("transactions", "amount_in_range", amount=-0.01)
    add("transactions", "amount_in_range", amount=5e7)
    add("transactions", "amount_is_numeric", sqlite_only=True, amount="12,50")
    # Several faults: the first rule in checking order (types first) is the one reported.
    add(
        "transactions",
        "amount_is_numeric",
        sqlite_only=True,
        amount="x",
        merchant_category="casino",
    )
    add("transactions", "transaction_id_is_integer", sqlite_only=True, transaction_id=1.5)
    add("transactions", "account_id_exists", account_id=123456)
    add("transactions", "account_id_exists", account_id=frozen)  # its account was quarantined
    add("transactions", "customer_id_matches_account", account_id=20, customer_id=1)
    add("transactions", "customer_id_exists", customer_id=999)
    add("transactions", "occurred_at_not_in_future", occurred_at="2099-05-01 10:00:00")
    add("transactions", "occurred_at_not_too_old", occurred_at="1970-01-01 00:00:00")
    add("transactions", "occurred_at_not_in_future", occurred_at="9999-12-31 23:59:59")
    add("transactions", "occurred_at_is_timestamp", sqlite_only=True, occurred_at=20250101)
    add("transactions", "merchant_category_in_domain", merchant_category="casino")
    add("transactions", "channel_not_null", channel=None)

    add("interactions", "channel_in_domain", channel="fax")
    add("interactions", "product_type_in_domain", product_type="crypto")
    add("interactions", "customer_id_exists", customer_id=999)
    add("interactions", "session_id_is_integer", sqlite_only=True, session_id="s-1")

    add("inbound_events", "account_id_exists", account_id=123456)
    add("inbound_events", "customer_id_matches_account", account_id=20, customer_id=1)
    add("inbound_events", "event_type_in_domain", event_type="lottery")
    add("inbound_events", "amount_in_range", amount=-1.0)

    add("offer_history", "treated_is_boolean", sqlite_only=True, treated="maybe")
    add("offer_history", "campaign_id_is_well_formed", campaign_id="   ")
    add("offer_history", "campaign_id_is_well_formed", campaign_id="C01\tcards")
    add("offer_history", "revenue_in_range", revenue=-10.0)
    add("offer_history", "offer_type_in_domain", offer_type="crypto")
    add("offer_history", "contacted_at_not_in_future", contacted_at="2099-01-01 00:00:00")
    return cases


DUPLICATED_CUSTOMER = 1500


def source_with_bad_rows(*, sqlite: bool) -> tuple[dict[str, list[dict]], list[BadRow]]:
    """Valid rows plus the bad rows the dialect can hold; a duplicated customer id spans chunks."""
    rows = valid_rows()
    cases = [case for case in bad_rows() if sqlite or not case.sqlite_only]
    for case in cases:
        rows[case.table].append(case.row)
    first = {**rows["customers"][0], "customer_id": DUPLICATED_CUSTOMER}
    last = {**rows["customers"][1], "customer_id": DUPLICATED_CUSTOMER}
    rows["customers"].insert(0, first)
    rows["customers"].append(last)
    cases += [
        BadRow("customers", first, "customer_id_is_unique"),
        BadRow("customers", last, "customer_id_is_unique"),
    ]
    return rows, cases
