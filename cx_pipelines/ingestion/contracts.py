"""What a valid row of each source table looks like: types, keys, domains, ranges, references.

A contract is data. :mod:`cx_pipelines.ingestion.expectations` turns it into one Great
Expectations suite per table, with one expectation per *rule*; every rule has a stable name
(``amount_in_range``, ``customer_id_exists``) that a quarantined row carries as its reason.

Rule names by kind, in the order they are checked (a row is quarantined under the first
rule it fails, so a text value in ``amount`` reports ``amount_is_numeric``, not also
``amount_not_null``):

1. type — ``<column>_is_integer`` / ``_is_numeric`` / ``_is_date`` / ``_is_timestamp`` /
   ``_is_boolean``: a value is present but cannot be read as that type;
2. presence — ``<column>_not_null`` for required columns;
3. uniqueness — ``<key>_is_unique``: every row whose key occurs more than once in the
   whole table is quarantined (the source cannot tell which copy is right);
4. values, column by column — ``<column>_in_domain``, ``<column>_in_range``,
   ``<column>_not_in_future``, ``<column>_not_too_old``, ``<column>_is_well_formed``;
5. references — ``<column>_exists`` (an *accepted* row of the referenced table), and
   ``customer_id_matches_account`` where a row names both an account and a customer;
6. conditions between columns — ``<column>_zero_unless_<value>`` (revenue is 0 unless the
   outcome is ``responded``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from cx_pipelines import source_schema as schema

FieldKind = Literal["id", "integer", "number", "date", "timestamp", "boolean", "category", "text"]

TYPE_RULE_SUFFIX = {
    "id": "is_integer",
    "integer": "is_integer",
    "number": "is_numeric",
    "date": "is_date",
    "timestamp": "is_timestamp",
    "boolean": "is_boolean",
}

EARLIEST_RECORD_DATE = datetime(1900, 1, 1)
"""Dates of record (customer since, account opened) before this are not plausible."""

EARLIEST_ACTIVITY = datetime(1990, 1, 1)
"""Activity (transactions, interactions, events, contacts) before this is not plausible."""

MINIMUM_CUSTOMER_AGE = 16
"""A customer born later than this many years before the run is not plausible."""

# \Z, not $: in Python regexes $ also matches before a trailing newline.
EMAIL_PATTERN = r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+\Z"
CODE_PATTERN = r"^(?=.{1,40}\Z)[^\x00-\x1f\x7f]*[^\s\x00-\x1f\x7f][^\x00-\x1f\x7f]*\Z"
"""A short printable identifier: 1–40 characters, no control characters, not blank."""
CONTACT_ID_PATTERN = r"^(?=.{1,64}\Z)[^\s\x00-\x1f\x7f]+\Z"
"""A contact or decision id: 1–64 printable characters without spaces."""


@dataclass(frozen=True)
class Field:
    """One source column and the rules its values must satisfy."""

    name: str
    kind: FieldKind
    required: bool = True
    domain: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    earliest: datetime | None = None
    pattern: str | None = None
    references: Literal["customers", "accounts"] | None = None
    maximum_years_before_run: int | None = None
    """Upper bound relative to the run: at most the run's year minus this (birth years)."""
    zero_unless: tuple[str, str] | None = None
    """(column, value): this number must be 0 unless ``column`` holds ``value``."""

    @property
    def zero_unless_rule(self) -> str | None:
        return f"{self.name}_zero_unless_{self.zero_unless[1]}" if self.zero_unless else None

    @property
    def type_rule(self) -> str | None:
        suffix = TYPE_RULE_SUFFIX.get(self.kind)
        return f"{self.name}_{suffix}" if suffix else None


@dataclass(frozen=True)
class TableContract:
    """The rules of one source table."""

    name: str
    key: str
    fields: tuple[Field, ...]
    owner_must_match_account: bool = False
    """The row's ``customer_id`` must own its ``account_id`` (``customer_id_matches_account``)."""

    @property
    def columns(self) -> list[str]:
        return [field.name for field in self.fields]

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(f"Table {self.name!r} has no column {name!r}")


def _id(name: str, *, required: bool = True, references=None) -> Field:
    return Field(name, "id", required=required, references=references)


def _category(name: str, domain: tuple[str, ...], *, required: bool = True) -> Field:
    return Field(name, "category", required=required, domain=domain)


CONTRACTS: dict[str, TableContract] = {
    contract.name: contract
    for contract in (
        TableContract(
            "customers",
            key="customer_id",
            fields=(
                _id("customer_id"),
                _category("customer_type", schema.CUSTOMER_TYPES),
                _category("region", schema.REGIONS),
                Field(
                    "birth_year",
                    "integer",
                    required=False,
                    minimum=1900,
                    maximum_years_before_run=MINIMUM_CUSTOMER_AGE,
                ),
                Field("annual_income", "number", required=False, minimum=0, maximum=1e8),
                Field("joined_on", "date", earliest=EARLIEST_RECORD_DATE),
                Field("email", "text", required=False, pattern=EMAIL_PATTERN),
            ),
        ),
        TableContract(
            "accounts",
            key="account_id",
            fields=(
                _id("account_id"),
                _id("customer_id", references="customers"),
                _category("product_type", schema.PRODUCT_TYPES),
                Field("opened_on", "date", earliest=EARLIEST_RECORD_DATE),
                _category("status", schema.ACCOUNT_STATUSES),
                Field("balance", "number", minimum=-1e7, maximum=1e8),
                Field("credit_limit", "number", required=False, minimum=0, maximum=1e7),
                Field("days_past_due", "integer", required=False, minimum=0, maximum=3650),
                # A yearly rate as a fraction (0.199 = 19.9 %); above 100 % is not a bank product.
                Field("interest_rate", "number", required=False, minimum=0, maximum=1),
            ),
        ),
        TableContract(
            "transactions",
            key="transaction_id",
            fields=(
                _id("transaction_id"),
                _id("account_id", references="accounts"),
                _id("customer_id", references="customers"),
                Field("occurred_at", "timestamp", earliest=EARLIEST_ACTIVITY),
                Field("amount", "number", minimum=0, maximum=1e6),
                _category("merchant_category", schema.MERCHANT_CATEGORIES),
                _category("channel", schema.TRANSACTION_CHANNELS),
            ),
            owner_must_match_account=True,
        ),
        TableContract(
            "interactions",
            key="interaction_id",
            fields=(
                _id("interaction_id"),
                _id("customer_id", references="customers"),
                _id("session_id", required=False),
                Field("occurred_at", "timestamp", earliest=EARLIEST_ACTIVITY),
                _category("channel", schema.INTERACTION_CHANNELS),
                _category("interaction_type", schema.INTERACTION_TYPES),
                _category("product_type", schema.PRODUCT_TYPES, required=False),
            ),
        ),
        TableContract(
            "inbound_events",
            key="event_id",
            fields=(
                _id("event_id"),
                _id("customer_id", references="customers"),
                _id("account_id", required=False, references="accounts"),
                _category("event_type", schema.EVENT_TYPES),
                Field("occurred_at", "timestamp", earliest=EARLIEST_ACTIVITY),
                Field("amount", "number", required=False, minimum=0, maximum=1e8),
            ),
            owner_must_match_account=True,
        ),
        TableContract(
            "offer_history",
            key="contact_id",
            fields=(
                _id("contact_id"),
                Field("campaign_id", "text", pattern=CODE_PATTERN),
                _id("customer_id", references="customers"),
                _category("offer_type", schema.OFFER_TYPES),
                _category("channel", schema.OFFER_CHANNELS),
                Field("treated", "boolean"),
                Field("contacted_at", "timestamp", earliest=EARLIEST_ACTIVITY),
                Field("responded", "boolean"),
                Field("revenue", "number", required=False, minimum=0, maximum=1e7),
            ),
        ),
        # customer_id refers to no table here: a result must match the decision that caused
        # it (interaction_results checks that), which names its customer.
        TableContract(
            "offer_responses",
            key="contact_id",
            fields=(
                Field("contact_id", "text", pattern=CONTACT_ID_PATTERN),
                _id("customer_id"),
                Field("campaign_id", "text", pattern=CODE_PATTERN),
                _category("offer_type", schema.OFFER_TYPES),
                _category("channel", schema.OFFER_CHANNELS),
                _category("outcome", schema.OUTCOMES),
                Field(
                    "revenue",
                    "number",
                    minimum=0,
                    maximum=1e7,
                    zero_unless=("outcome", "responded"),
                ),
                Field("responded_at", "timestamp", earliest=EARLIEST_ACTIVITY),
            ),
        ),
    )
}
"""One contract per source table, in dependency order (referenced tables first)."""


def contract_for(table: str) -> TableContract:
    """The contract of source table ``table``."""
    try:
        return CONTRACTS[table]
    except KeyError:
        known = ", ".join(CONTRACTS)
        raise KeyError(f"No source contract for table {table!r}; known tables: {known}") from None
