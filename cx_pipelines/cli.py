"""The `cx` command: generate or load source data, materialise assets, work with strategies.

Adding a subcommand: write ``_name(arguments) -> int`` (the exit code), register it in
:func:`build_parser` with ``set_defaults(handler=_name)`` (or in a function like
``add_strategy_commands`` that takes the subparsers). Just raise on failure: :func:`main`
turns any exception into one line on stderr (exit 1; :class:`cx_pipelines.errors.UsageError`
exits 2, like a bad argument), with the traceback only under ``cx --debug``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cx_pipelines import config
from cx_pipelines.errors import UsageError

EXIT_FAILURE = 1
EXIT_USAGE = 2


class SourceDatabaseError(RuntimeError):
    """The source database could not be reached or written."""


@contextmanager
def _source_database(url: str) -> Iterator[None]:
    """Database errors as one line naming the (password-masked) source URL."""
    import sqlalchemy as sa

    from cx_pipelines.ingestion.source import mask_url

    try:
        yield
    except (sa.exc.DBAPIError, sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as error:
        raise SourceDatabaseError(
            f"cannot write the source database {mask_url(url)}: {describe_error(error)}"
        ) from error


def _generate(arguments: argparse.Namespace) -> int:
    from cx_pipelines.progress import ProgressBar
    from cx_pipelines.world.generator import generate

    url = config.source_url()
    with _source_database(url), ProgressBar("generating", unit="customers") as progress:
        summary = generate(
            customers=arguments.customers, seed=arguments.seed, source_url=url, on_progress=progress
        )
    print(summary.describe())
    return 0


def _load_cdnow(arguments: argparse.Namespace) -> int:
    from cx_pipelines.world.cdnow import load_cdnow

    url = config.source_url()
    with _source_database(url):
        counts = load_cdnow(master=arguments.master, source_url=url)
    for table, rows in counts.items():
        print(f"{table}: {rows:,} rows")
    return 0


def _materialize(arguments: argparse.Namespace) -> int:
    from cx_pipelines.defs.runs import failed_steps, materialize, summarize_run
    from cx_pipelines.progress import ProgressBar

    with ProgressBar("materialising", unit="steps") as progress:
        result = materialize(arguments.selection, progress=None if arguments.debug else progress)
    print(summarize_run(result))
    if result.success:
        return 0
    for line in failed_steps(result):
        print(f"cx materialize: error: {line}", file=sys.stderr)
    return EXIT_FAILURE


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exits 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _serve(arguments: argparse.Namespace) -> int:
    from cx_pipelines.service import run

    run(host=arguments.host, port=arguments.port, workers=arguments.workers)
    return 0


def _api_key(arguments: argparse.Namespace) -> int:
    from cx_pipelines.service.auth import hash_key, new_key

    key = new_key()
    print(f"key (give it to the client; it is not stored): {key}")
    print("entry for CX_API_KEYS_FILE (YAML, keep the file outside the repository):")
    print(f"- {{name: {arguments.name}, sha256: {hash_key(key)}, scopes: [{arguments.scopes}]}}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cx", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks (and Dagster's full log)"
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="fill the source system with a synthetic bank")
    generate.add_argument("--customers", type=_positive, default=20_000)
    generate.add_argument("--seed", type=int, default=7)
    generate.set_defaults(handler=_generate)

    load = commands.add_parser(
        "load-cdnow", help="load the CDNOW log as customers and transactions"
    )
    load.add_argument("--master", action="store_true", help="the 23,570-customer master log")
    load.set_defaults(handler=_load_cdnow)

    materialize = commands.add_parser("materialize", help="materialise assets through Dagster")
    materialize.add_argument(
        "selection",
        nargs="*",
        default=["*"],
        help="Dagster asset selections, e.g. customers+ or 'key:customers or key:accounts' "
        "(several: their union; default: every asset)",
    )
    materialize.set_defaults(handler=_materialize)

    serve = commands.add_parser("serve", help="run the real-time decision service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument(
        "--workers",
        type=_positive,
        default=1,
        help="worker processes (more than one: a supervisor deals connections to them in turn)",
    )
    serve.set_defaults(handler=_serve)

    api_key = commands.add_parser("api-key", help="make a decision-service API key")
    api_key.add_argument("--name", required=True)
    api_key.add_argument("--scopes", default="decide", help="comma-separated: decide,respond,admin")
    api_key.set_defaults(handler=_api_key)

    from cx_pipelines.decisioning.commands import add_strategy_commands

    add_strategy_commands(commands)
    from cx_pipelines.campaigns.commands import add_campaign_commands

    add_campaign_commands(commands)
    from cx_pipelines.loop.commands import add_evaluate_command, add_simulate_command

    add_evaluate_command(commands)
    add_simulate_command(commands)
    return parser


def describe_error(error: BaseException) -> str:
    """The first line of an error's message (SQLAlchemy's driver error, not its SQL)."""
    from cx_pipelines.privacy import mask_text

    original = getattr(error, "orig", None) or error
    lines = [line for line in str(original).splitlines() if line.strip()]
    text = lines[0].strip() if lines else type(error).__name__
    return mask_text(text)


def _stdout_closed() -> int:
    """The reader went away (`cx … | head`): stop quietly, without a BrokenPipe traceback."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_FAILURE


def main(argv: Sequence[str] | None = None) -> int:
    arguments_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in arguments_list
    if debug:  # accepted anywhere on the line, not only before the subcommand
        arguments_list = [item for item in arguments_list if item != "--debug"]
    try:
        arguments = build_parser().parse_args(arguments_list)
    except SystemExit as stop:
        return int(stop.code or 0) if not isinstance(stop.code, str) else EXIT_USAGE
    arguments.debug = debug
    prog = f"cx {arguments.command}"
    try:
        code = arguments.handler(arguments)
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        return _stdout_closed()
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the one place every failure becomes one line
        if debug:
            traceback.print_exc()
        kind = "usage error" if isinstance(error, UsageError) else "error"
        try:
            print(f"{prog}: {kind}: {describe_error(error)}", file=sys.stderr)
        except BrokenPipeError:
            return _stdout_closed()
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
