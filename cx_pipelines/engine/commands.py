"""`cx strategy …` subcommands (filled in by the decision-engine work)."""

from __future__ import annotations

import argparse


def add_strategy_commands(commands: argparse._SubParsersAction) -> None:
    """Register `cx strategy` and its subcommands on the `cx` parser."""
