"""`cx campaign validate [FOLDER]`: check campaign files as the catalog's check does."""

from __future__ import annotations

import argparse
from pathlib import Path

from cx_pipelines.campaigns.catalog import check_campaigns

DEFAULT_FOLDER = Path("strategies") / "campaigns"


def _validate(arguments: argparse.Namespace) -> int:
    folder = Path(arguments.folder)
    try:
        campaigns, errors = check_campaigns(folder)
    except FileNotFoundError as error:
        print(error)
        return 2
    for error in errors:
        print(error.describe())
    for campaign in campaigns:
        caps = []
        if campaign.volume_cap != float("inf"):
            caps.append(f"{campaign.volume_cap:,.0f} contacts")
        if campaign.budget != float("inf"):
            caps.append(f"budget {campaign.budget:,.2f}")
        print(
            f"ok  {campaign.campaign_id:<24} {campaign.offer:<14} {campaign.channel:<12} "
            f"{' and '.join(caps):<32} {campaign.start} .. {campaign.end}"
        )
    print(f"{len(campaigns)} valid, {len(errors)} errors in {folder}")
    return 1 if errors else 0


def add_campaign_commands(commands: argparse._SubParsersAction) -> None:
    """Add ``cx campaign validate`` to the ``cx`` parser's subcommands."""
    campaign = commands.add_parser("campaign", help="work with campaign files")
    actions = campaign.add_subparsers(dest="action", required=True)
    validate = actions.add_parser(
        "validate", help="load and check campaign files; errors as file:line: message"
    )
    validate.add_argument("folder", nargs="?", default=str(DEFAULT_FOLDER))
    validate.set_defaults(handler=_validate)
