"""The customer intelligence record: per customer and channel, the ranked treatments with
their arbitration terms and reason trace (SPEC S5, seed 000 claims 3, 11, 19).

One function decides a whole population (the batch path, used by the
``customer_intelligence_record`` asset) and one a single customer (the decision service);
both run the same strategy once per channel and shape every result with :func:`channel_record`,
so a customer decided either way gets an identical record and trace.

A strategy may declare the input attribute ``decision_channel`` (string): it is set to the
channel being decided, so calculations can pick that channel's model scores (see
``strategies/next_best_action.yaml``) and the arbitration terms are those of the channel,
not one channel's for all. ``unknown_customer`` (boolean) is set for a customer without
data, so the strategy can answer with its fallback treatment. No Dagster here.
"""

from cx_pipelines.intelligence.population import Request, decide_many, decide_population
from cx_pipelines.intelligence.record import (
    CHANNEL_ATTRIBUTE,
    RECORD_COLUMNS,
    UNKNOWN_ATTRIBUTE,
    UNKNOWN_CUSTOMER,
    channel_record,
    customer_values,
    decide_customer,
    offer_type_of,
    record_json,
)

__all__ = [
    "CHANNEL_ATTRIBUTE",
    "RECORD_COLUMNS",
    "UNKNOWN_ATTRIBUTE",
    "UNKNOWN_CUSTOMER",
    "Request",
    "channel_record",
    "customer_values",
    "decide_customer",
    "decide_many",
    "decide_population",
    "offer_type_of",
    "record_json",
]
