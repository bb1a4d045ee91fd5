"""The source system's tables: the contract between whatever fills them and ingestion.

Column types are deliberately loose (text where a real extract would be text), so that
bad values arrive at ingestion and are quarantined there instead of failing at load.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

CUSTOMER_TYPES = (
    "mass_market",
    "young_professional",
    "affluent",
    "student",
    "senior",
    "small_business",
)
REGIONS = ("north", "south", "east", "west", "central")
PRODUCT_TYPES = ("credit_card", "checking", "savings", "mortgage", "personal_loan")
ACCOUNT_STATUSES = ("open", "closed")
MERCHANT_CATEGORIES = (
    "groceries",
    "dining",
    "travel",
    "fuel",
    "electronics",
    "apparel",
    "entertainment",
    "health",
    "utilities",
    "home",
)
TRANSACTION_CHANNELS = ("pos", "ecommerce", "atm", "branch", "mobile")
INTERACTION_CHANNELS = ("web", "mobile_app", "call_centre", "branch", "atm", "email")
INTERACTION_TYPES = (
    "login",
    "product_view",
    "application_start",
    "application_complete",
    "application_abandon",
    "service_request",
    "complaint",
    "offer_presented",
    "offer_accepted",
    "offer_declined",
)
EVENT_TYPES = ("cycle_date", "late_payment", "credit_request", "bankruptcy", "address_change")
OFFER_TYPES = ("credit_card", "personal_loan", "savings", "mortgage", "overdraft")
OFFER_CHANNELS = ("email", "mobile_app", "web", "call_centre", "branch")

customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_type", sa.String(40)),
    sa.Column("region", sa.String(40)),
    sa.Column("birth_year", sa.Integer),
    sa.Column("annual_income", sa.Float),
    sa.Column("joined_on", sa.Date),
    sa.Column("email", sa.String(200)),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("product_type", sa.String(40)),
    sa.Column("opened_on", sa.Date),
    sa.Column("status", sa.String(20)),
    sa.Column("balance", sa.Float),
    sa.Column("credit_limit", sa.Float),  # null for products without a limit
    sa.Column("days_past_due", sa.Integer),
    sa.Column("interest_rate", sa.Float),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("transaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("account_id", sa.BigInteger, index=True),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("occurred_at", sa.DateTime),
    sa.Column("amount", sa.Float),
    sa.Column("merchant_category", sa.String(40)),
    sa.Column("channel", sa.String(40)),
)

interactions = sa.Table(
    "interactions",
    metadata,
    sa.Column("interaction_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("session_id", sa.BigInteger),
    sa.Column("occurred_at", sa.DateTime),
    sa.Column("channel", sa.String(40)),
    sa.Column("interaction_type", sa.String(40)),
    sa.Column("product_type", sa.String(40)),  # null when the interaction is about no product
)

inbound_events = sa.Table(
    "inbound_events",
    metadata,
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("account_id", sa.BigInteger),  # null for customer-level events
    sa.Column("event_type", sa.String(40)),
    sa.Column("occurred_at", sa.DateTime),
    sa.Column("amount", sa.Float),  # e.g. the credit requested; null when not applicable
)

offer_history = sa.Table(
    "offer_history",
    metadata,
    sa.Column("contact_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("campaign_id", sa.String(40)),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("offer_type", sa.String(40)),
    sa.Column("channel", sa.String(40)),
    sa.Column("treated", sa.Boolean),  # false: randomised control, not contacted
    sa.Column("contacted_at", sa.DateTime),
    sa.Column("responded", sa.Boolean),
    sa.Column("revenue", sa.Float),
)

SOURCE_TABLES = (customers, accounts, transactions, interactions, inbound_events, offer_history)
"""In dependency order: a table's foreign keys point only to tables before it."""

PRIMARY_KEYS = {table.name: table.primary_key.columns.keys()[0] for table in SOURCE_TABLES}

OUTCOMES = ("responded", "not_responded")

offer_responses = sa.Table(
    "offer_responses",
    metadata,
    # Text: a batch contact id or a real-time decision id (INTERFACES §3), whatever system sent it.
    sa.Column("contact_id", sa.String(64), primary_key=True, autoincrement=False),
    sa.Column("customer_id", sa.BigInteger, index=True),
    sa.Column("campaign_id", sa.String(40)),
    sa.Column("offer_type", sa.String(40)),
    sa.Column("channel", sa.String(40)),
    sa.Column("outcome", sa.String(20)),  # OUTCOMES; control contacts have one too
    sa.Column("revenue", sa.Float),  # >= 0, and 0 unless responded
    sa.Column("responded_at", sa.DateTime),
)

RESPONSE_TABLES = (offer_responses,)
"""Filled by the systems that act on decisions (empty in a generated world), not by the world."""

PRIMARY_KEYS[offer_responses.name] = "contact_id"
