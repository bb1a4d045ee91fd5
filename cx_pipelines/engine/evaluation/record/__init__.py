"""Per-record evaluator: one customer and its accounts, as a dict, in one pass.

``evaluate_customer`` (in :mod:`.run`) is the entry point; :mod:`.treatments` chooses
the offers and :mod:`.rules` runs first-match segment and category rules.
"""

from cx_pipelines.engine.evaluation.record.run import evaluate_customer

__all__ = ["evaluate_customer"]
