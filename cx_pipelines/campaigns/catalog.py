"""Campaigns as YAML files in ``strategies/campaigns/``: the model, the loader and its checks.

One file holds one campaign::

    campaign_id: card_young_mobile        # letters, digits, underscores; unique
    description: ...                      # optional
    offer: credit_card                    # an offer type of the source system
    treatment: credit_card_offer          # the creative / treatment shown
    channel: mobile_app                   # an offer channel
    eligibility: {all: [...]}             # rule form of cx_pipelines.campaigns.rules
    cost_per_contact: 0.40                # >= 0, currency per treated contact
    margin_per_response: 150              # > 0, currency per (incremental) response
    budget: 2000                          # optional cap on spend (treated contacts x cost)
    volume_cap: 5000                      # optional cap on treated contacts; one of the two
    control_share: 0.1                    # in [0, 1): randomised hold-out, not contacted
    start: 2026-09-01                     # first and last day the campaign is active
    end: 2026-12-31
    salt: card_young_mobile_v1            # optional: control draw salt (default campaign_id)

Every error names the file and line and what is wrong: YAML syntax, unknown or missing
keys, wrong types, unknown offer / channel / attribute, bad dates, shares out of range,
duplicate campaign ids.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from cx_pipelines.campaigns.rules import Rule, RuleError, parse_rule
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
REQUIRED = (
    "campaign_id",
    "offer",
    "treatment",
    "channel",
    "eligibility",
    "cost_per_contact",
    "margin_per_response",
    "control_share",
    "start",
    "end",
)
OPTIONAL = ("description", "budget", "volume_cap", "salt")


@dataclass(frozen=True)
class Campaign:
    """A validated campaign."""

    campaign_id: str
    offer: str
    treatment: str
    channel: str
    eligibility: Rule
    cost_per_contact: float
    margin_per_response: float
    budget: float  # math.inf: no budget cap
    volume_cap: float  # math.inf: no volume cap
    control_share: float
    start: date
    end: date
    salt: str
    description: str
    file: str
    content_hash: str

    def active_on(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class CampaignError:
    """One problem in one campaign file, with where it is."""

    file: str
    line: int | None
    message: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.message}"


class CampaignValidationError(ValueError):
    """Campaign files failed validation; ``errors`` lists every problem with file and line."""

    def __init__(self, errors: list[CampaignError]) -> None:
        self.errors = errors
        super().__init__("\n".join(error.describe() for error in errors))


class _Loader(yaml.SafeLoader):
    """Safe YAML with dates kept as text, so a bad date is our error with its line."""


_Loader.add_constructor(
    "tag:yaml.org,2002:timestamp", lambda loader, node: loader.construct_scalar(node)
)


def _line_map(node: yaml.Node, path: tuple = (), lines: dict | None = None) -> dict:
    """Line (1-based) of every key and list item of a composed YAML document."""
    lines = {} if lines is None else lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            lines[child] = key.start_mark.line + 1
            _line_map(value, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, (*path, index), lines)
    return lines


def line_at(lines: dict, path: tuple) -> int | None:
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path)


def read_document(path: Path) -> tuple[object, dict, str, list[CampaignError]]:
    text = path.read_text(encoding="utf-8")
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        return None, {}, text, [CampaignError(path.name, line, f"YAML syntax: {error.problem}")]
    finally:
        loader.dispose()
    return data, _line_map(node) if node is not None else {}, text, []


def _number(data: dict, key: str, problems: list, *, minimum: float, strict: bool = False):
    value = data.get(key)
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        problems.append(((key,), f"{key} must be a number, not {value!r}"))
        return None
    if value < minimum or (strict and value == minimum):
        relation = ">" if strict else ">="
        problems.append(((key,), f"{key} must be {relation} {minimum}, got {value}"))
        return None
    return float(value)


def parse_date(data: dict, key: str, problems: list) -> date | None:
    value = data.get(key)
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(((key,), f"{key} must be a date YYYY-MM-DD, not {value!r}"))
        return None


def _choice(data: dict, key: str, allowed: tuple[str, ...], problems: list) -> str | None:
    value = data.get(key)
    if value in allowed:
        return value
    close = difflib.get_close_matches(str(value), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(allowed)}"
    problems.append(((key,), f"unknown {key} {value!r}{hint}"))
    return None


def _build(data: dict, problems: list, *, file: str, digest: str) -> Campaign | None:
    for key in data:
        if key not in REQUIRED and key not in OPTIONAL:
            close = difflib.get_close_matches(str(key), (*REQUIRED, *OPTIONAL), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(((key,), f"unknown key {key!r}{hint}"))
    for key in REQUIRED:
        if key not in data:
            problems.append(((), f"missing required key {key!r}"))
    if problems:
        return None
    for key in ("campaign_id", "treatment"):
        if not isinstance(data[key], str) or not IDENTIFIER.match(data[key]):
            problems.append(
                ((key,), f"{key} must be lower-case letters, digits, _ (got {data[key]!r})")
            )
    offer = _choice(data, "offer", OFFER_TYPES, problems)
    channel = _choice(data, "channel", OFFER_CHANNELS, problems)
    try:
        rule = parse_rule(data["eligibility"], ("eligibility",))
    except RuleError as error:
        problems.append((error.path, f"eligibility: {error.message}"))
        rule = None
    cost = _number(data, "cost_per_contact", problems, minimum=0.0)
    margin = _number(data, "margin_per_response", problems, minimum=0.0, strict=True)
    budget = _number(data, "budget", problems, minimum=0.0)
    volume = _number(data, "volume_cap", problems, minimum=0.0)
    if isinstance(data.get("volume_cap"), float) and not float(data["volume_cap"]).is_integer():
        problems.append((("volume_cap",), "volume_cap must be a whole number of contacts"))
    if "budget" not in data and "volume_cap" not in data:
        problems.append(((), "a campaign needs a budget, a volume_cap or both"))
    share = data["control_share"]
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share < 1:
        problems.append((("control_share",), f"control_share must be in [0, 1), got {share!r}"))
    start, end = parse_date(data, "start", problems), parse_date(data, "end", problems)
    if start and end and end < start:
        problems.append((("end",), f"end {end} is before start {start}"))
    salt = data.get("salt", data["campaign_id"])
    if not isinstance(salt, str) or not salt:
        problems.append((("salt",), f"salt must be non-empty text, not {salt!r}"))
    if problems:
        return None
    return Campaign(
        campaign_id=data["campaign_id"],
        offer=offer,
        treatment=data["treatment"],
        channel=channel,
        eligibility=rule,
        cost_per_contact=cost,
        margin_per_response=margin,
        budget=budget,
        volume_cap=volume,
        control_share=float(share),
        start=start,
        end=end,
        salt=salt,
        description=str(data.get("description", "")).strip(),
        file=file,
        content_hash=digest,
    )


def check_campaign_file(path: Path) -> tuple[Campaign | None, list[CampaignError]]:
    """Load one campaign file: (the campaign, []) or (None, every problem found)."""
    data, lines, text, errors = read_document(path)
    if errors:
        return None, errors
    if not isinstance(data, dict):
        return None, [CampaignError(path.name, 1, "a campaign file is one YAML mapping")]
    problems: list[tuple[tuple, str]] = []
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    campaign = _build(data, problems, file=path.name, digest=digest)
    return campaign, [
        CampaignError(path.name, line_at(lines, where), what) for where, what in problems
    ]


def campaign_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise FileNotFoundError(f"campaign folder {folder} does not exist")
    return sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))


def check_campaigns(folder: Path) -> tuple[list[Campaign], list[CampaignError]]:
    """Every campaign of a folder that validates, and every error of those that do not."""
    campaigns, errors = [], []
    seen: dict[str, str] = {}
    for path in campaign_files(folder):
        campaign, problems = check_campaign_file(path)
        errors.extend(problems)
        if campaign is None:
            continue
        if campaign.campaign_id in seen:
            errors.append(
                CampaignError(
                    path.name,
                    1,
                    f"campaign_id {campaign.campaign_id!r} is also used by "
                    f"{seen[campaign.campaign_id]}",
                )
            )
            continue
        seen[campaign.campaign_id] = path.name
        campaigns.append(campaign)
    return campaigns, errors


def load_campaigns(folder: Path) -> list[Campaign]:
    """Every campaign of a folder; raises :class:`CampaignValidationError` if any is invalid."""
    campaigns, errors = check_campaigns(folder)
    if errors:
        raise CampaignValidationError(errors)
    return campaigns


def catalog_hash(campaigns: list[Campaign]) -> str:
    """Content hash of a set of campaigns (order-independent)."""
    joined = ",".join(sorted(f"{c.campaign_id}:{c.content_hash}" for c in campaigns))
    return hashlib.sha256(joined.encode()).hexdigest()[:12]
