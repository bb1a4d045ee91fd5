"""The decision engine: strategy language, loader/validator and the two evaluators.

A strategy (YAML, see ``FORMAT.md``) is loaded and validated once; the batch evaluator
runs it over a whole population vectorised (customers and all their accounts in a
single pass), the per-record evaluator over one customer, with identical results.
No Dagster here.
"""

from cx_pipelines.engine.loader import check_strategy, load_strategy
from cx_pipelines.engine.model import Strategy
from cx_pipelines.engine.schema import strategy_json_schema
from cx_pipelines.engine.user_exits import register_user_exit

__all__ = [
    "Strategy",
    "check_strategy",
    "load_strategy",
    "register_user_exit",
    "strategy_json_schema",
]
