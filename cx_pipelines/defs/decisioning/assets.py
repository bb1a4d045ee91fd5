"""Decisioning assets: the strategy catalog, and the periodic review of the whole population.

``strategy_catalog`` lists every strategy file with its content hash; its blocking check
``strategies_pass_validation_and_golden_cases`` loads each file and runs its golden cases
on both evaluators, so a broken strategy never reaches ``customer_decisions`` /
``account_decisions``. Those two come from one batch evaluation (customers and all their
accounts in a single pass, seed 004) of the decision strategy's periodic-review event
over the engine inputs built by :func:`cx_pipelines.decisioning.population.engine_inputs`
(the warehouse → data-dictionary mapping is documented there).
"""

import os
from pathlib import Path

import dagster as dg
import pandas as pd

from cx_pipelines import warehouse
from cx_pipelines.decisioning.simulate import (
    OPTIONAL_TABLES,
    decision_columns,
    engine_inputs,
    model_versions,
)

GROUP = "decisioning"
_REPOSITORY_STRATEGIES = Path(__file__).resolve().parents[3] / "strategies"


def default_strategies_dir() -> str:
    """``CX_STRATEGIES_DIR`` if set, else ``./strategies`` when it exists, else the repository's."""
    configured = os.environ.get("CX_STRATEGIES_DIR")
    if configured:
        return configured
    local = Path("strategies")
    return str(local.resolve() if local.is_dir() else _REPOSITORY_STRATEGIES)


class StrategyRepository(dg.ConfigurableResource):
    """Where strategies live, and which one (and which event) decides the population."""

    directory: str = ""
    decision_strategy: str = "retail_bank.yaml"
    event: str = "periodic_review"
    trace: bool = True

    def folder(self) -> Path:
        return Path(self.directory or default_strategies_dir())

    def files(self) -> list[Path]:
        folder = self.folder()
        if not folder.is_dir():
            raise FileNotFoundError(
                f"strategy folder {folder} does not exist (set CX_STRATEGIES_DIR)"
            )
        return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))

    def decision_path(self) -> Path:
        path = Path(self.decision_strategy)
        return path if path.is_absolute() else self.folder() / path


def _catalog_row(path: Path) -> dict[str, object]:
    from cx_pipelines.engine import check_strategy, load_strategy

    errors, warnings = check_strategy(path)
    row: dict[str, object] = {
        "file": path.name,
        "path": str(path),
        "strategy": None,
        "version": None,
        "content_hash": None,
        "events": "",
        "mechanisms": 0,
        "golden_cases": 0,
        "valid": not errors,
        "errors": "\n".join(e.describe() for e in errors),
        "warnings": "\n".join(w.describe() for w in warnings),
    }
    if not errors:
        strategy = load_strategy(path)
        row.update(
            strategy=strategy.name,
            version=strategy.version,
            content_hash=strategy.content_hash,
            events=",".join(strategy.events),
            mechanisms=len(strategy.mechanisms),
            golden_cases=len(strategy.golden_cases),
        )
    return row


@dg.asset(group_name=GROUP, kinds={"yaml", "pandas"})
def strategy_catalog(
    context: dg.AssetExecutionContext, strategies: StrategyRepository
) -> dg.Output:
    """Every strategy file in the strategy repository, with its content hash and validity."""
    rows = [_catalog_row(path) for path in strategies.files()]
    catalog = pd.DataFrame(rows)
    decision = strategies.decision_path()
    listed = catalog.loc[catalog["path"] == str(decision)]
    decision_hash = listed["content_hash"].iloc[0] if len(listed) else None
    context.log.info(f"{len(catalog)} strategies, {int(catalog['valid'].sum())} valid")
    metadata = {
        "strategies": len(catalog),
        "invalid": int((~catalog["valid"]).sum()),
        "decision_strategy": str(decision),
        "decision_strategy_hash": str(decision_hash),
    }
    if decision_hash is not None:
        from cx_pipelines.engine import load_strategy
        from cx_pipelines.engine.tools.render import render_mermaid

        diagram = render_mermaid(load_strategy(decision))
        metadata["decision_strategy_diagram"] = dg.MetadataValue.md(f"```mermaid\n{diagram}```")
    return dg.Output(catalog, metadata=metadata)


@dg.asset_check(asset=strategy_catalog, blocking=True)
def strategies_pass_validation_and_golden_cases(
    strategies: StrategyRepository,
) -> dg.AssetCheckResult:
    """Every strategy loads, type-checks and passes its golden cases on both evaluators."""
    from cx_pipelines.engine import check_strategy, load_strategy, run_golden_cases

    problems: list[str] = []
    checked = 0
    for path in strategies.files():
        errors, _ = check_strategy(path)
        if errors:
            problems.extend(f"{e.describe()}" for e in errors)
            continue
        failures = run_golden_cases(load_strategy(path))
        problems.extend(f"{path.name}: {failure}" for failure in failures)
        checked += 1
    if not strategies.decision_path().exists():
        problems.append(f"decision strategy {strategies.decision_path()} does not exist")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "strategies_checked": checked,
            "problems": dg.MetadataValue.md("\n".join(f"- `{p}`" for p in problems) or "none"),
        },
    )


def _require_validated(strategy, path: Path) -> None:
    """Refuse to decide with a file that changed since ``strategy_catalog`` validated it."""
    catalog = warehouse.read_table("strategy_catalog")
    row = catalog.loc[catalog["path"] == str(path)]
    if not len(row) or not bool(row["valid"].iloc[0]):
        raise dg.Failure(
            f"{path} is not a valid strategy in strategy_catalog; fix it and "
            "re-materialise strategy_catalog"
        )
    if row["content_hash"].iloc[0] != strategy.content_hash:
        raise dg.Failure(
            f"{path} changed since strategy_catalog validated it (hash "
            f"{row['content_hash'].iloc[0]} then, {strategy.content_hash} now); "
            "re-materialise strategy_catalog so its check runs on this version"
        )


def _optional_tables() -> dict[str, pd.DataFrame | None]:
    return {
        name: warehouse.read_table(name) if warehouse.table_exists(name) else None
        for name in OPTIONAL_TABLES
    }


def _restore_ids(decided: pd.DataFrame, original: pd.Series, column: str) -> pd.DataFrame:
    """The engine keys customers by text; give the warehouse its integer ids back."""
    if column in decided.columns and pd.api.types.is_integer_dtype(original.dtype):
        decided[column] = pd.to_numeric(decided[column]).astype(original.dtype)
    return decided


def _counts(frame: pd.DataFrame, column: str) -> dict[str, int]:
    if column not in frame.columns:
        return {}
    return {
        str(k): int(v)
        for k, v in frame[column].astype(object).fillna("(none)").value_counts().items()
    }


UPSTREAM_TABLES = ("customers", "accounts", *OPTIONAL_TABLES)


def upstream_keys() -> list[dg.AssetKey]:
    """The warehouse tables decisions read that other domains define as assets.

    Tables are read from the warehouse (the optional ones only when materialised), so
    they are declared as dependencies — for lineage and run order — only when an asset
    of that name exists.
    """
    from cx_pipelines.defs import features, sources, training

    defined: set[dg.AssetKey] = set()
    for definitions in (sources.defs, features.defs, training.defs):
        for item in definitions.assets or []:
            defined.update(getattr(item, "keys", None) or {getattr(item, "key", None)})
    return [dg.AssetKey(name) for name in UPSTREAM_TABLES if dg.AssetKey(name) in defined]


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "customer_decisions": dg.AssetOut(
            description="One customer intelligence record per customer from the periodic review.",
            kinds={"pandas", "parquet"},
            group_name=GROUP,
            is_required=False,
        ),
        "account_decisions": dg.AssetOut(
            description="Per-account decisions and category actions from the same single pass.",
            kinds={"pandas", "parquet"},
            group_name=GROUP,
            is_required=False,
        ),
    },
    deps=[dg.AssetKey("strategy_catalog"), *upstream_keys()],
    can_subset=True,  # selecting one of the two still evaluates the single pass
)
def periodic_review_decisions(context: dg.AssetExecutionContext, strategies: StrategyRepository):
    """Evaluate the decision strategy's periodic-review event over the whole population."""
    from cx_pipelines.engine import evaluate_batch, load_strategy

    strategy = load_strategy(strategies.decision_path())
    _require_validated(strategy, strategies.decision_path())
    customers = warehouse.read_table("customers")
    accounts = warehouse.read_table("accounts")
    tables = _optional_tables()
    customer_inputs, account_inputs = engine_inputs(
        strategy, customers=customers, accounts=accounts, tables=tables
    )
    result = evaluate_batch(
        strategy,
        event=strategies.event,
        customers=customer_inputs,
        accounts=account_inputs,
        model_versions=model_versions(tables.get("customer_scores")),
        trace=strategies.trace,
    )
    customer_decisions = _restore_ids(result.customers, customers["customer_id"], "customer_id")
    account_decisions = _restore_ids(result.accounts, accounts["customer_id"], "customer_id")
    account_decisions = _restore_ids(account_decisions, accounts["account_id"], "account_id")
    used = [name for name, table in tables.items() if table is not None]
    context.log.info(
        f"{strategy.name} {strategy.content_hash}: {len(customer_decisions)} customers, "
        f"{len(account_decisions)} accounts; optional inputs: {used or 'none'}"
    )
    common = {
        "strategy": strategy.name,
        "strategy_hash": strategy.content_hash,
        "event": strategies.event,
        "optional_inputs": ", ".join(used) or "none",
    }
    customer_summary = {
        f"{column}": dg.MetadataValue.json(_counts(customer_decisions, column))
        for column in ("segment", "test_group", "category")
    }
    account_columns = [c for c in decision_columns(account_decisions) if c != "account_type"]
    account_summary = {
        column: dg.MetadataValue.json(_counts(account_decisions, column))
        for column in account_columns[:6]
    }
    selected = context.op_execution_context.selected_output_names
    if "customer_decisions" in selected:
        yield dg.Output(
            customer_decisions,
            output_name="customer_decisions",
            metadata={**common, **customer_summary},
        )
    if "account_decisions" in selected:
        yield dg.Output(
            account_decisions,
            output_name="account_decisions",
            metadata={**common, **account_summary},
        )


@dg.asset_check(asset="customer_decisions")
def every_customer_is_decided(customer_decisions: pd.DataFrame) -> dg.AssetCheckResult:
    """One record per customer of the population, none twice, each with a segment and group."""
    duplicated = int(customer_decisions["customer_id"].duplicated().sum())
    customers = (
        warehouse.table_row_count("customers") if warehouse.table_exists("customers") else None
    )
    missing_group = int(customer_decisions["test_group"].isna().sum())
    passed = (
        duplicated == 0
        and missing_group == 0
        and (customers is None or customers == len(customer_decisions))
    )
    return dg.AssetCheckResult(
        passed=passed,
        metadata={
            "decided": len(customer_decisions),
            "customers": customers if customers is not None else -1,
            "duplicated_ids": duplicated,
            "without_test_group": missing_group,
        },
    )
