"""Champion/challenger experiments on campaign targeting: a live split test of the customers.

One YAML file in ``strategies/campaigns/experiments/`` (or ``CX_EXPERIMENTS_DIR``) holds one
experiment::

    experiment_id: propensity_challenger   # letters, digits, underscores
    description: ...                       # optional
    salt: propensity_challenger_v1         # optional: the split's salt (default the id)
    start: 2026-10-01                      # first and last decision date it runs on
    end: 2026-12-31
    horizon: 6                             # optional: the decision runs it lasts, stated
                                           # up front: the test's looks are judged against
                                           # group-sequential boundaries for that many
                                           # (cx_pipelines.feedback.sequential)
    spending: obrien_fleming               # optional, with a horizon: how the looks spend
                                           # the error rate (obrien_fleming, the default:
                                           # little early; pocock: evenly over the looks)
    control_share: 0.4                     # optional: while the experiment runs, every
                                           # arm holds out this share of its decided rows
                                           # of every campaign (default: each campaign's)
    arms:                                  # arm name -> share and targeting variant
      champion: {share: 0.8}               # one arm is named champion
      challenger:
        share: 0.2
        targeting:                         # optional; default: the champion models' value
          value: propensity                # uplift (default): uplift x margin - cost;
                                           # propensity: p_response x margin - cost
          scores: challenger_scores.parquet  # optional score file (customer_id and
                                           # propensity__/uplift__<offer>__<channel>
                                           # columns), relative to this file; default
                                           # the champion models' customer_scores
          exploration: false               # optional, default true

**The split** is deterministic: with ``u = uniform(customer_id, "experiment:" + salt)``
(:func:`cx_pipelines.campaigns.draws.uniform`), a customer is in the first arm (in file
order) whose cumulative share exceeds ``u``. The same customer stays in the same arm on
every run while the salt and shares stay; anyone can recompute it.

**Per arm**, targeting runs as without an experiment on the arm's customers only, with each
campaign's volume cap ``floor(volume_cap x share)`` and budget ``budget x share`` (so the
arms' caps never add up to more than the campaign's), its own control group (the
campaign's usual control draw among the arm's decided rows, at the experiment's
``control_share`` if it states one), and the arm's name written as
``test_group`` on every decided row. At most one experiment may be active on a date.
Every error names the file and line, like campaign files.
"""

from __future__ import annotations

import difflib
import hashlib
import math
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from cx_pipelines.campaigns.catalog import (
    IDENTIFIER,
    Campaign,
    CampaignError,
    CampaignValidationError,
    line_at,
    parse_date,
    read_document,
)
from cx_pipelines.campaigns.draws import uniform

CHAMPION_ARM = "champion"
VALUES = ("uplift", "propensity")
KEYS = (
    "experiment_id", "description", "salt", "start", "end", "arms", "horizon", "spending",
    "control_share",
)  # fmt: skip
SPENDING = ("obrien_fleming", "pocock")
"""Spending functions of the group-sequential test (:mod:`cx_pipelines.feedback.sequential`)."""
MAX_CONTROL_SHARE = 0.9
ARM_KEYS = ("share", "targeting")
TARGETING_KEYS = ("value", "scores", "exploration")
SHARE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TargetingVariant:
    """How one arm targets: what it values a contact by, with whose scores, exploring or not."""

    value: str = "uplift"
    scores: Path | None = None  # None: the champion models' customer_scores
    exploration: bool = True

    def describe(self) -> dict[str, object]:
        return {
            "value": self.value,
            "scores": None if self.scores is None else str(self.scores),
            "exploration": self.exploration,
        }


@dataclass(frozen=True)
class Arm:
    name: str
    share: float
    targeting: TargetingVariant


@dataclass(frozen=True)
class Experiment:
    """A validated champion/challenger experiment."""

    experiment_id: str
    salt: str
    start: date
    end: date
    arms: tuple[Arm, ...]
    description: str
    file: str
    content_hash: str
    horizon: int | None = None  # decision runs, stated before the experiment starts
    spending: str | None = None  # the test's spending function (None: obrien_fleming)
    control_share: float | None = None  # every arm's hold-out per campaign (None: each own)

    def active_on(self, day: date) -> bool:
        return self.start <= day <= self.end

    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    def describe(self) -> dict[str, object]:
        """What exports' manifests record of the experiment (no customer data)."""
        described = {
            "experiment_id": self.experiment_id,
            "salt": self.salt,
            "file": f"{self.file}@{self.content_hash}",
            "arms": {
                arm.name: {"share": arm.share, "targeting": arm.targeting.describe()}
                for arm in self.arms
            },
        }
        stated = {"horizon": self.horizon, "spending": self.spending}
        stated["control_share"] = self.control_share
        return described | {key: value for key, value in stated.items() if value is not None}


def arm_of(customer_ids: np.ndarray, experiment: Experiment) -> np.ndarray:
    """The arm name of every customer (the documented hash split)."""
    draw = uniform(np.asarray(customer_ids), f"experiment:{experiment.salt}")
    bounds = np.cumsum([arm.share for arm in experiment.arms])
    bounds[-1] = np.inf  # shares sum to 1; rounding never leaves a customer out
    names = np.array(experiment.arm_names(), dtype=object)
    return names[np.searchsorted(bounds, draw, side="right")]


def arm_campaigns(
    campaigns: list[Campaign], share: float, *, control_share: float | None = None
) -> list[Campaign]:
    """The campaigns with their caps split by an arm's share (and, with ``control_share``,
    that hold-out share instead of each campaign's)."""
    return [
        replace(
            campaign,
            control_share=campaign.control_share if control_share is None else control_share,
            volume_cap=math.floor(campaign.volume_cap * share)
            if math.isfinite(campaign.volume_cap)
            else math.inf,
            budget=campaign.budget * share,
        )
        for campaign in campaigns
    ]


def _targeting(data: object, at: tuple, problems: list, folder: Path) -> TargetingVariant | None:
    if data is None:
        return TargetingVariant()
    if not isinstance(data, dict):
        problems.append((at, "targeting must be a mapping of value / scores / exploration"))
        return None
    for key in data:
        if key not in TARGETING_KEYS:
            close = difflib.get_close_matches(str(key), TARGETING_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(((*at, key), f"unknown targeting key {key!r}{hint}"))
    value = data.get("value", "uplift")
    if value not in VALUES:
        known = ", ".join(VALUES)
        problems.append(((*at, "value"), f"value must be one of {known}, not {value!r}"))
    scores = data.get("scores")
    path = None
    if scores is not None:
        if not isinstance(scores, str) or not scores:
            problems.append(((*at, "scores"), f"scores must be a file path, not {scores!r}"))
        else:
            path = Path(scores) if Path(scores).is_absolute() else folder / scores
            if path.suffix not in (".parquet", ".csv"):
                problems.append(((*at, "scores"), f"scores must be .parquet or .csv: {scores}"))
    exploration = data.get("exploration", True)
    if not isinstance(exploration, bool):
        problems.append(((*at, "exploration"), "exploration must be true or false"))
    return TargetingVariant(value=value, scores=path, exploration=bool(exploration))


def _arms(data: object, problems: list, folder: Path) -> tuple[Arm, ...]:
    if not isinstance(data, dict) or len(data) < 2:
        problems.append((("arms",), "arms must map at least two arm names to their settings"))
        return ()
    arms = []
    for name, spec in data.items():
        at = ("arms", name)
        if not isinstance(name, str) or not IDENTIFIER.match(name):
            problems.append((at, f"arm name must be lower-case letters, digits, _ (got {name!r})"))
            continue
        if not isinstance(spec, dict):
            problems.append((at, f"arm {name} must be a mapping with share and targeting"))
            continue
        for key in spec:
            if key not in ARM_KEYS:
                problems.append(((*at, key), f"unknown arm key {key!r}; known: share, targeting"))
        share = spec.get("share")
        if isinstance(share, bool) or not isinstance(share, int | float) or not 0 < share < 1:
            problems.append(((*at, "share"), f"share must be in (0, 1), got {share!r}"))
            continue
        targeting = _targeting(spec.get("targeting"), (*at, "targeting"), problems, folder)
        if targeting is not None:
            arms.append(Arm(name, float(share), targeting))
    if CHAMPION_ARM not in data:
        problems.append((("arms",), f"one arm must be named {CHAMPION_ARM!r}"))
    total = sum(arm.share for arm in arms)
    if len(arms) == len(data) and abs(total - 1) > SHARE_TOLERANCE:
        problems.append((("arms",), f"arm shares must add up to 1, they add up to {total:g}"))
    return tuple(arms)


def check_experiment_file(path: Path) -> tuple[Experiment | None, list[CampaignError]]:
    """Load one experiment file: (the experiment, []) or (None, every problem found)."""
    data, lines, text, errors = read_document(path)
    if errors:
        return None, errors
    if not isinstance(data, dict):
        return None, [CampaignError(path.name, 1, "an experiment file is one YAML mapping")]
    problems: list[tuple[tuple, str]] = []
    for key in data:
        if key not in KEYS:
            close = difflib.get_close_matches(str(key), KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append(((key,), f"unknown key {key!r}{hint}"))
    for key in ("experiment_id", "start", "end", "arms"):
        if key not in data:
            problems.append(((), f"missing required key {key!r}"))
    experiment = None
    if not problems:
        identifier = data["experiment_id"]
        if not isinstance(identifier, str) or not IDENTIFIER.match(identifier):
            problems.append(
                (("experiment_id",), f"experiment_id must be lower-case letters, digits, _ "
                 f"(got {identifier!r})")
            )  # fmt: skip
        salt = data.get("salt", identifier)
        if not isinstance(salt, str) or not salt:
            problems.append((("salt",), f"salt must be non-empty text, not {salt!r}"))
        start, end = parse_date(data, "start", problems), parse_date(data, "end", problems)
        if start and end and end < start:
            problems.append((("end",), f"end {end} is before start {start}"))
        arms = _arms(data["arms"], problems, path.parent)
        horizon = data.get("horizon")
        if horizon is not None and (
            isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1
        ):
            problems.append((("horizon",), f"horizon must be a positive number of runs, "
                             f"not {horizon!r}"))  # fmt: skip
        spending = data.get("spending")
        if spending is not None and spending not in SPENDING:
            known = ", ".join(SPENDING)
            problems.append((("spending",), f"spending must be one of {known}, not {spending!r}"))
        elif spending is not None and horizon is None:
            problems.append((("spending",), "spending needs a horizon (the looks it spends over)"))
        control_share = data.get("control_share")
        if control_share is not None and (
            isinstance(control_share, bool)
            or not isinstance(control_share, int | float)
            or not 0 < control_share <= MAX_CONTROL_SHARE
        ):
            problems.append((("control_share",), f"control_share must be in (0, "
                             f"{MAX_CONTROL_SHARE}], not {control_share!r}"))  # fmt: skip
        if not problems:
            experiment = Experiment(
                experiment_id=identifier,
                salt=salt,
                start=start,
                end=end,
                arms=arms,
                description=str(data.get("description", "")).strip(),
                file=path.name,
                content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest()[:12],
                horizon=horizon,
                spending=spending,
                control_share=None if control_share is None else float(control_share),
            )
    return experiment, [CampaignError(path.name, line_at(lines, at), what) for at, what in problems]


def check_experiments(folder: Path) -> tuple[list[Experiment], list[CampaignError]]:
    """Every valid experiment of a folder (none if it does not exist), and every error."""
    if not folder.is_dir():
        return [], []
    experiments, errors = [], []
    for path in sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml")):
        experiment, problems = check_experiment_file(path)
        errors.extend(problems)
        if experiment is None:
            continue
        for other in experiments:
            if other.experiment_id == experiment.experiment_id:
                errors.append(
                    CampaignError(path.name, 1, f"experiment_id {experiment.experiment_id!r} is "
                                  f"also used by {other.file}")
                )  # fmt: skip
            elif experiment.start <= other.end and other.start <= experiment.end:
                errors.append(
                    CampaignError(path.name, 1, f"runs {experiment.start}..{experiment.end}, "
                                  f"overlapping {other.file}: one experiment at a time")
                )  # fmt: skip
        experiments.append(experiment)
    return experiments, errors


def active_experiment(folder: Path, day: date) -> Experiment | None:
    """The experiment active on ``day``; raises :class:`CampaignValidationError` if any is
    invalid."""
    experiments, errors = check_experiments(folder)
    if errors:
        raise CampaignValidationError(errors)
    active = [experiment for experiment in experiments if experiment.active_on(day)]
    return active[0] if active else None


class ScoreFileError(ValueError):
    """An arm's score file cannot be read or lacks ``customer_id``."""


def read_scores(path: Path) -> pd.DataFrame:
    """An arm's score file (Parquet or CSV) with a ``customer_id`` column."""
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as error:
        raise ScoreFileError(f"cannot read the arm's score file {path}: {error}") from error
    if "customer_id" not in frame.columns:
        raise ScoreFileError(f"score file {path} has no customer_id column")
    if frame["customer_id"].duplicated().any():
        raise ScoreFileError(f"score file {path}: column customer_id has duplicate entries")
    return frame
