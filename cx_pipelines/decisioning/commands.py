"""`cx strategy …`: validate, test, show, diff and simulate strategy files.

Every subcommand exits non-zero when anything fails (a file does not load, a golden case
differs, a table is missing), and prints errors as ``file:line, path: message`` so an
editor or CI log points at the exact place.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cx_pipelines.engine.language.errors import EngineError

STRATEGY_SUFFIXES = (".yaml", ".yml")


def _strategy_files(paths: list[str]) -> list[Path]:
    """Files named on the command line; a folder stands for its strategy files."""
    files: list[Path] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in STRATEGY_SUFFIXES))
        else:
            files.append(path)
    return files


def _error_line(problem: EngineError, *, kind: str = "error") -> str:
    return f"{kind}: {problem.describe()}"


def _load(path: Path):
    """Load one strategy, printing every error found; ``None`` when it does not load."""
    from cx_pipelines.engine import load_strategy

    if not path.exists():
        print(f"error: {path}: no such file", file=sys.stderr)
        return None
    try:
        return load_strategy(path)
    except EngineError as problem:
        for item in [problem, *getattr(problem, "others", [])]:
            print(_error_line(item), file=sys.stderr)
        return None


def _validate(arguments: argparse.Namespace) -> int:
    from cx_pipelines.engine import check_strategy, load_strategy

    files = _strategy_files(arguments.paths)
    if not files:
        print("error: no strategy files given", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        if not path.exists():
            print(f"error: {path}: no such file", file=sys.stderr)
            failed += 1
            continue
        errors, warnings = check_strategy(path)
        for warning in warnings:
            print(_error_line(warning, kind="warning"), file=sys.stderr)
        if errors or (arguments.strict and warnings):
            for problem in errors:
                print(_error_line(problem), file=sys.stderr)
            print(f"FAILED {path}: {len(errors)} error(s), {len(warnings)} warning(s)")
            failed += 1
            continue
        strategy = load_strategy(path)
        print(
            f"ok {path}: {strategy.name} v{strategy.version} {strategy.content_hash}  "
            f"{len(strategy.events)} events, {len(strategy.mechanisms)} mechanisms, "
            f"{len(strategy.golden_cases)} golden cases"
        )
    return 1 if failed else 0


def _test(arguments: argparse.Namespace) -> int:
    from cx_pipelines.engine import run_golden_cases

    files = _strategy_files(arguments.paths)
    if not files:
        print("error: no strategy files given", file=sys.stderr)
        return 2
    failed = 0
    for path in files:
        strategy = _load(path)
        if strategy is None:
            print(f"FAILED {path}: does not load")
            failed += 1
            continue
        failures = run_golden_cases(strategy)
        for failure in failures:
            print(_error_line(failure, kind="fail"), file=sys.stderr)
        cases = len(strategy.golden_cases)
        if not cases:
            print(f"warning: {path}: no golden cases", file=sys.stderr)
        if failures:
            failing = len({failure.location.path for failure in failures})
            print(
                f"FAILED {path}: {failing} of {cases} golden cases fail "
                f"({len(failures)} failure(s) on the batch and per-record evaluators)"
            )
            failed += 1
        else:
            print(f"ok {path}: {cases} golden cases pass on the batch and per-record evaluators")
    return 1 if failed else 0


def _show(arguments: argparse.Namespace) -> int:
    from cx_pipelines.engine.tools.render import render_mermaid, render_text

    strategy = _load(Path(arguments.path))
    if strategy is None:
        return 1
    try:
        if arguments.mermaid:
            print(render_mermaid(strategy, mechanism=arguments.mechanism), end="")
        else:
            print(render_text(strategy, mechanism=arguments.mechanism), end="")
    except KeyError as problem:
        print(f"error: {problem.args[0]}", file=sys.stderr)
        return 1
    return 0


def _diff(arguments: argparse.Namespace) -> int:
    from cx_pipelines.engine.tools.diff import diff_files

    strategies = [_load(Path(arguments.old)), _load(Path(arguments.new))]
    if any(strategy is None for strategy in strategies):
        return 1
    difference = diff_files(arguments.old, arguments.new)
    old, new = strategies
    print(
        f"content hash {old.content_hash} -> {new.content_hash}"
        + ("  (same)" if old.content_hash == new.content_hash else "")
    )
    print(difference.describe(), end="")
    return 1 if arguments.exit_code and not difference.identical else 0


def _event_of(strategy, chosen: str | None) -> str:
    """``--event``, or the strategy's only event; several events and no choice is an error."""
    if chosen is not None:
        return chosen
    if len(strategy.events) == 1:
        return next(iter(strategy.events))
    raise EngineError(
        f"strategy {strategy.name!r} has {len(strategy.events)} events "
        f"({', '.join(strategy.events)}): choose one with --event"
    )


def _mapping(pairs: list[str]) -> dict[str, str]:
    mapping = {}
    for pair in pairs:
        name, sign, column = pair.partition("=")
        if not sign or not name.strip() or not column.strip():
            raise EngineError(
                f"--map {pair!r}: write it as attribute=column (income=annual_income)"
            )
        mapping[name.strip()] = column.strip()
    return mapping


def _warehouse_population(arguments: argparse.Namespace, strategies: list):
    """Engine inputs, model versions and a description, from the materialised warehouse."""
    from cx_pipelines import warehouse
    from cx_pipelines.decisioning.simulate import OPTIONAL_TABLES, engine_inputs, model_versions

    customers = warehouse.read_table("customers")
    accounts = warehouse.read_table("accounts")
    tables = {
        name: warehouse.read_table(name) if warehouse.table_exists(name) else None
        for name in OPTIONAL_TABLES
    }
    if arguments.sample and len(customers) > arguments.sample:
        customers = customers.sample(n=arguments.sample, random_state=arguments.seed)
    inputs = engine_inputs(strategies, customers=customers, accounts=accounts, tables=tables)
    present = [name for name, table in tables.items() if table is not None]
    described = (
        "population: warehouse tables customers, accounts"
        + (f", {', '.join(present)}" if present else "")
        + f" ({warehouse.config.warehouse_dir()})"
    )
    return inputs, model_versions(tables.get("customer_scores")), described, {}


def _file_population(arguments: argparse.Namespace, strategies: list):
    """Engine inputs, model versions and a description, from --customers / --accounts files."""
    from cx_pipelines.decisioning.population_files import file_inputs, read_population_file
    from cx_pipelines.decisioning.simulate import model_versions

    mapping = _mapping(arguments.map or [])
    customers = read_population_file(arguments.customers)
    accounts = read_population_file(arguments.accounts) if arguments.accounts else None
    rows = len(customers)
    if arguments.sample and len(customers) > arguments.sample:
        customers = customers.sample(n=arguments.sample, random_state=arguments.seed)
    customer_frame, account_frame, counts = file_inputs(
        strategies,
        customers=customers,
        accounts=accounts,
        customers_file=arguments.customers,
        accounts_file=arguments.accounts,
        mapping=mapping,
    )
    described = f"population: {arguments.customers} ({rows:,} customers"
    if len(customers) != rows:
        described += f", {len(customers):,} sampled"
    described += ")"
    if arguments.accounts:
        owners = "the sample" if len(customers) != rows else arguments.customers
        described += (
            f", {arguments.accounts} ({counts['rows']:,} accounts: {counts['read']:,} read, "
            f"{counts['other_types']:,} of types the strategy does not declare, "
            f"{counts['no_customer']:,} of customers not in {owners})"
        )
    sources = {}
    for strategy in strategies:
        for attribute in strategy.attributes.values():
            if attribute.derived:
                continue
            if attribute.account_type is None:
                column, file = mapping.get(attribute.name, attribute.name), arguments.customers
            else:
                column = mapping.get(attribute.name, attribute.column)
                file = arguments.accounts
            sources.setdefault(attribute.name, f"column {column!r} of {file}")
    return (customer_frame, account_frame), model_versions(customers), described, sources


def _simulate(arguments: argparse.Namespace) -> int:
    from cx_pipelines import warehouse
    from cx_pipelines.decisioning.population_files import all_null_inputs
    from cx_pipelines.decisioning.simulate import PopulationError, simulate

    strategy = _load(Path(arguments.path))
    against = _load(Path(arguments.against)) if arguments.against else None
    if strategy is None or (arguments.against and against is None):
        return 1
    strategies = [strategy, *([against] if against else [])]
    try:
        if (arguments.accounts or arguments.map) and not arguments.customers:
            raise EngineError("--accounts and --map need --customers FILE")
        event = _event_of(strategy, arguments.event)
        if arguments.customers:
            inputs, versions, described, sources = _file_population(arguments, strategies)
        else:
            inputs, versions, described, sources = _warehouse_population(arguments, strategies)
        for warning in all_null_inputs(strategies, *inputs, sources=sources):
            print(f"warning: {warning}", file=sys.stderr)
        report = simulate(
            strategy,
            event=event,
            customers=inputs[0],
            accounts=inputs[1],
            versions=versions,
            against=against,
            channel=arguments.channel,
            interaction_type=arguments.interaction_type,
            examples=arguments.examples,
        )
    except (warehouse.WarehouseError, PopulationError, EngineError) as problem:
        for line in str(problem).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 1
    print(described)
    print(report.describe(), end="")
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(_report_json(report), indent=2, default=str))
        print(f"report written to {arguments.json}")
    return 0


def _schema(arguments: argparse.Namespace) -> int:
    from cx_pipelines.engine import strategy_json_schema

    print(json.dumps(strategy_json_schema(), indent=2))
    return 0


def _report_json(report) -> dict:
    return {
        "strategy": report.strategy,
        "event": report.event,
        "customers": report.customers,
        "accounts": report.accounts,
        "against": report.against,
        "distributions": {key: counts.to_dict() for key, counts in report.distributions.items()},
        "numbers": {
            key: {"mean": mean, "share_with_value": share}
            for key, (mean, share) in report.numbers.items()
        },
        "shifts": [
            {
                "level": shift.level,
                "column": shift.column,
                "rows": shift.rows,
                "changed": shift.changed,
                "transitions": shift.transitions.to_dict("records"),
                "by_segment": shift.by_segment.to_dict("records"),
            }
            for shift in report.shifts
        ],
        "examples": report.examples,
    }


def add_strategy_commands(commands: argparse._SubParsersAction) -> None:
    """Register `cx strategy` and its subcommands on the `cx` parser."""
    strategy = commands.add_parser(
        "strategy", help="validate, test, show, diff, simulate strategies"
    )
    subcommands = strategy.add_subparsers(dest="strategy_command", required=True)

    validate = subcommands.add_parser("validate", help="load and type-check strategy files")
    validate.add_argument("paths", nargs="+", help="strategy files or folders (e.g. strategies/)")
    validate.add_argument("--strict", action="store_true", help="warnings fail too")
    validate.set_defaults(handler=_validate)

    test = subcommands.add_parser("test", help="run golden cases on both evaluators")
    test.add_argument("paths", nargs="+", help="strategy files or folders")
    test.set_defaults(handler=_test)

    show = subcommands.add_parser("show", help="print trees, matrices and scorecards (or Mermaid)")
    show.add_argument("path")
    show.add_argument("--mermaid", action="store_true", help="a Mermaid flowchart instead of text")
    show.add_argument("--mechanism", help="only this mechanism")
    show.set_defaults(handler=_show)

    diff = subcommands.add_parser("diff", help="what changed between two strategy files")
    diff.add_argument("old")
    diff.add_argument("new")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when they differ")
    diff.set_defaults(handler=_diff)

    schema = subcommands.add_parser(
        "schema", help="print the JSON Schema of strategy files (for editors)"
    )
    schema.set_defaults(handler=_schema)

    simulate = subcommands.add_parser(
        "simulate",
        help="run over the materialised population or your own files; compare with --against",
    )
    simulate.add_argument("path")
    simulate.add_argument("--against", help="another strategy file to compare decisions with")
    simulate.add_argument(
        "--event", help="the event to run (default: the strategy's only event, if it has one)"
    )
    simulate.add_argument(
        "--customers",
        help="a CSV or Parquet file of customers (columns named as the input attributes) "
        "instead of the warehouse",
    )
    simulate.add_argument(
        "--accounts",
        help="a CSV or Parquet file of accounts: account_id, customer_id, account_type and "
        "the attribute columns (balance for credit_card.balance)",
    )
    simulate.add_argument(
        "--map",
        action="append",
        metavar="ATTRIBUTE=COLUMN",
        help="read an attribute (or customer_id, account_id, account_type) from a column "
        "of another name; accounts.customer_id=COLUMN (or accounts.account_id, "
        "accounts.account_type) for the accounts file alone; repeat for several",
    )
    simulate.add_argument("--channel", help="only this channel's treatments")
    simulate.add_argument(
        "--interaction-type", help="the interaction (default: the event's own, e.g. complaint)"
    )
    simulate.add_argument("--sample", type=int, help="simulate on this many random customers")
    simulate.add_argument("--seed", type=int, default=7, help="seed of --sample")
    simulate.add_argument("--examples", type=int, default=5, help="example customers to show")
    simulate.add_argument("--json", help="also write the report as JSON to this file")
    simulate.set_defaults(handler=_simulate)
