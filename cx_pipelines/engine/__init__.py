"""The decision engine: strategy language, loader/validator and the two evaluators.

A strategy (YAML, see ``FORMAT.md``) is loaded and validated once; the batch evaluator
runs it over a whole population vectorised (customers and all their accounts in a
single pass), the per-record evaluator over one customer, with identical results.
No Dagster here.

Inside: ``language/`` (model, errors, schema, YAML source, expressions), ``mechanisms/``
(one module per mechanism kind, one registry), ``loading/`` (compile, flow, offers,
checks, golden), ``evaluation/batch/`` and ``evaluation/record/``, ``tools/`` (render,
diff). Each package's ``__init__`` says what it holds.
"""

from cx_pipelines.engine.evaluation.batch import BatchResult, evaluate_batch, evaluate_rows
from cx_pipelines.engine.evaluation.record import evaluate_customer
from cx_pipelines.engine.language.model import Strategy
from cx_pipelines.engine.language.user_exits import register_user_exit
from cx_pipelines.engine.loading.compile import check_strategy, load_strategy
from cx_pipelines.engine.loading.golden import run_golden_cases
from cx_pipelines.engine.loading.schema import strategy_json_schema

__all__ = [
    "BatchResult",
    "Strategy",
    "check_strategy",
    "evaluate_batch",
    "evaluate_customer",
    "evaluate_rows",
    "load_strategy",
    "register_user_exit",
    "run_golden_cases",
    "strategy_json_schema",
]
