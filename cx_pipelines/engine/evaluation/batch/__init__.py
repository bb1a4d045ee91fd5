"""Batch evaluator: a whole population, customers and accounts in one vectorised pass.

``evaluate_batch`` (in :mod:`.evaluate`) is the entry point; :mod:`.run` holds the
working state, :mod:`.treatments` the offers, :mod:`.output` the result frames and
:mod:`.trace` / :mod:`.text` the column-wise JSON traces.
"""

from cx_pipelines.engine.evaluation.batch.evaluate import evaluate_batch
from cx_pipelines.engine.evaluation.batch.output import BatchResult

__all__ = ["BatchResult", "evaluate_batch"]
