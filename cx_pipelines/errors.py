"""Errors every part of cx-pipelines may raise for the `cx` command to report.

``cx`` prints any error as one line on stderr and exits 1; a :class:`UsageError` (the
command was given something it cannot take) exits 2, like argparse's own usage errors.
"""

from __future__ import annotations


class UsageError(ValueError):
    """The command line asks for something that cannot be done as asked (exit code 2)."""
