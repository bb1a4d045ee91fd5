"""`cx simulate` (the closed loop) and `cx strategy evaluate` (off-policy evaluation)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

REPORT_COLUMNS = {
    "cycle": "cycle",
    "decision_date": "date",
    "contacts": "contacts",
    "response_rate": "resp. rate",
    "control_response_rate": "control rate",
    "incremental_profit": "incr. profit",
    "oracle_profit": "oracle",
    "regret": "regret",
    "oracle_share": "of oracle",
    "oracle_share_without_controls": "of oracle, no controls",
    "propensity_profit": "propensity-only",
    "random_profit": "random",
    "retrained": "retrained",
    "champions": "champions after",
}


def format_report(table) -> str:
    """The per-cycle figures as a plain-text table, then where each cycle's regret lies."""
    from cx_pipelines.loop.regret import describe

    shown = table[list(REPORT_COLUMNS)].rename(columns=REPORT_COLUMNS)
    text = shown.to_markdown(index=False, floatfmt=",.3f", tablefmt="simple")
    if "regret_breakdown" not in table:
        return text
    lines = [
        line
        for cycle, breakdown in zip(table["cycle"], table["regret_breakdown"], strict=True)
        for line in describe(breakdown if isinstance(breakdown, dict) else {}, cycle=int(cycle))
    ]
    return "\n".join(
        [text, *(["", "where the regret lies (true values):", *lines] if lines else [])]
    )


def _simulate(arguments: argparse.Namespace) -> int:
    from cx_pipelines.loop.cycle import LoopError, LoopSettings, run_loop
    from cx_pipelines.loop.live_experiment import ExperimentSettingsError
    from cx_pipelines.world.simulator import SimulatorError

    settings = LoopSettings(
        cycles=arguments.cycles,
        start=date.fromisoformat(arguments.start),
        cycle_days=arguments.cycle_days,
        seed=arguments.seed,
        retrain_after_results=arguments.retrain_after,
        challenger=arguments.challenger or "",
        challenger_share=arguments.challenger_share,
        experiment_horizon=arguments.experiment_horizon,
        experiment_control_share=arguments.experiment_control_share,
        experiment_spending=arguments.experiment_spending,
    )
    stated = {
        "--experiment-horizon": arguments.experiment_horizon,
        "--experiment-control-share": arguments.experiment_control_share,
        "--experiment-spending": arguments.experiment_spending,
    }
    design = [option for option, value in stated.items() if value is not None]
    if design and not arguments.challenger:
        print(
            f"error: the planted experiment's design ({', '.join(design)}) needs --challenger",
            file=sys.stderr,
        )
        return 1
    try:
        report = run_loop(settings)
    except (LoopError, SimulatorError, ExperimentSettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = report.table()
    print(format_report(table))
    for figures in report.experiment:
        print(figures.describe())
    if arguments.json:
        Path(arguments.json).write_text(table.to_json(orient="records", indent=2))
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    from cx_pipelines.loop.candidate import CandidateError, evaluate_candidate

    try:
        evaluation = evaluate_candidate(
            Path(arguments.candidate), run_key=arguments.run_key, bootstrap=arguments.bootstrap
        )
    except CandidateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(evaluation.describe())
    if arguments.json:
        Path(arguments.json).write_text(json.dumps(evaluation.as_dict(), indent=2))
    return 0


def add_simulate_command(commands: argparse._SubParsersAction) -> None:
    """Register `cx simulate` on the `cx` parser."""
    simulate = commands.add_parser(
        "simulate", help="run the closed loop K times against the simulated customers"
    )
    simulate.add_argument("--cycles", type=int, default=3, help="decision cycles (default 3)")
    simulate.add_argument("--start", default="2026-10-01", help="first decision date")
    simulate.add_argument("--cycle-days", type=int, default=7, help="days between decisions")
    simulate.add_argument("--seed", type=int, default=7, help="seed of the customers' answers")
    simulate.add_argument(
        "--retrain-after",
        type=int,
        default=1,
        help="retrain once this many new results arrived (the sensor's rule; default 1)",
    )
    simulate.add_argument(
        "--challenger",
        choices=["true_uplift", "same"],
        help="run the campaigns as a live champion/challenger split test with a planted "
        "challenger arm (true_uplift: targets on the world's true uplift; same: an A/A test)",
    )
    simulate.add_argument(
        "--challenger-share", type=float, default=0.2, help="the challenger arm's share"
    )
    simulate.add_argument(
        "--experiment-horizon",
        type=int,
        help="with --challenger: the looks the experiment file states up front (default: the "
        "cycles); the test's boundaries are spent over them",
    )
    simulate.add_argument(
        "--experiment-control-share",
        type=float,
        help="with --challenger: the hold-out share the experiment file states for every arm "
        "and campaign (default: each campaign's own control_share)",
    )
    simulate.add_argument(
        "--experiment-spending",
        help="with --challenger: the spending function the experiment file states "
        "(obrien_fleming, the default, or pocock)",
    )
    simulate.add_argument("--json", help="also write the per-cycle figures to this file")
    simulate.set_defaults(handler=_simulate)


def add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    """Register `cx strategy evaluate` on the existing `cx strategy` parser."""
    strategy = commands.choices["strategy"]
    subcommands = next(
        action
        for action in strategy._actions  # argparse keeps a parser's subcommands here
        if isinstance(action, argparse._SubParsersAction)
    )
    evaluate = subcommands.add_parser(
        "evaluate",
        help="estimate a candidate's incremental profit from the decision log (off-policy)",
    )
    evaluate.add_argument("candidate", help="a campaign YAML file or a folder of them")
    evaluate.add_argument("--run-key", help="the logged decision run (default: the latest)")
    evaluate.add_argument(
        "--bootstrap", type=int, default=0, help="bootstrap resamples (default: variance formula)"
    )
    evaluate.add_argument("--json", help="also write the estimates to this file")
    evaluate.set_defaults(handler=_evaluate)
