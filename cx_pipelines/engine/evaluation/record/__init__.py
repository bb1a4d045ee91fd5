"""Per-record evaluator: one customer and its accounts, as a dict, in one pass."""
