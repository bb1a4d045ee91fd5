"""Batch evaluator: a whole population, customers and accounts in one vectorised pass.

``evaluate_batch`` (in :mod:`.evaluate`) is the entry point (``evaluate_rows`` for rows
given as arrays, matched to their accounts by position: a service's small batches);
:mod:`.run` holds the working state, :mod:`.treatments` the offers, :mod:`.output` the
result frames, :mod:`.ranked` the untraced ranked records and :mod:`.trace` /
:mod:`.text` the column-wise JSON traces.
"""

from cx_pipelines.engine.evaluation.batch.evaluate import evaluate_batch, evaluate_rows
from cx_pipelines.engine.evaluation.batch.output import BatchResult

__all__ = ["BatchResult", "evaluate_batch", "evaluate_rows"]
