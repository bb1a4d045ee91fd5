"""The `cx` command: generate or load source data, materialise assets, work with strategies."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cx_pipelines import config


def _generate(arguments: argparse.Namespace) -> int:
    from cx_pipelines.world import generate_world

    summary = generate_world(
        customers=arguments.customers, seed=arguments.seed, source_url=config.source_url()
    )
    print(summary.describe())
    return 0


def _load_cdnow(arguments: argparse.Namespace) -> int:
    from cx_pipelines.world.cdnow import load_cdnow

    counts = load_cdnow(master=arguments.master, source_url=config.source_url())
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows")
    return 0


def _materialize(arguments: argparse.Namespace) -> int:
    from cx_pipelines.defs.runs import materialize, summarize_run

    result = materialize(arguments.selection)
    print(summarize_run(result))
    return 0 if result.success else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cx", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="fill the source system with a synthetic bank")
    generate.add_argument("--customers", type=int, default=20_000)
    generate.add_argument("--seed", type=int, default=7)
    generate.set_defaults(handler=_generate)

    load = commands.add_parser(
        "load-cdnow", help="load the CDNOW log as customers and transactions"
    )
    load.add_argument("--master", action="store_true", help="the 23,570-customer master log")
    load.set_defaults(handler=_load_cdnow)

    materialize = commands.add_parser("materialize", help="materialise assets through Dagster")
    materialize.add_argument(
        "selection", nargs="?", default="*", help="Dagster asset selection (default: every asset)"
    )
    materialize.set_defaults(handler=_materialize)

    from cx_pipelines.decisioning.commands import add_strategy_commands

    add_strategy_commands(commands)
    from cx_pipelines.loop.commands import add_evaluate_command, add_simulate_command

    add_evaluate_command(commands)
    add_simulate_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    return arguments.handler(arguments)


if __name__ == "__main__":
    sys.exit(main())
