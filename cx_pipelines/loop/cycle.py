"""``cx simulate --cycles K``: the whole closed loop, K times, through Dagster.

One cycle on decision date ``d`` (``CX_DECISION_DATE``, advanced by ``cycle_days``):

1. **decide → target → export**: one Dagster run of ``customer_scores`` (scored as of ``d``,
   with each customer's recent contacts) and the campaign assets (the customer
   intelligence record, ``campaign_targets``, the exports);
2. **respond**: the simulated customers (:mod:`cx_pipelines.world.simulator`) answer every
   export run of date ``d`` into ``$CX_HOME/inbox/``; they are the world outside the
   platform, so they are not an asset;
3. **ingest → report**: one Dagster run of ``interaction_results`` (matched to the
   decisions) and ``strategy_performance``;
4. **yardsticks**: the cycle's true incremental profit and that of the oracle, random and
   propensity-only policies on the same customers, caps, contact policy and control groups
   (:mod:`cx_pipelines.loop.yardsticks`);
5. **retrain**: when the retraining sensor's rule says enough results are new
   (``retraining_request``), one Dagster run of the ``model_retraining`` job's assets
   (promotion only through the champion/challenger checks), then the next cycle decides
   with whatever models are champion.

With ``LoopSettings.challenger`` (``true_uplift``: a planted arm targeting on the world's
true uplift; ``same``: an A/A test) the campaigns run as a live champion/challenger split
test (:mod:`cx_pipelines.loop.live_experiment`): before each decision the loop writes the
experiment file (and the planted scores) into ``$CX_HOME/experiments`` and points
``CX_EXPERIMENTS_DIR`` at it; after each cycle the arms' true and measured incremental
profit and the test's p-value land in ``LoopReport.experiment``. Without it (the default)
the loop is exactly as before.

The loop's clock: the platform's "now" (``CX_NOW``, :func:`cx_pipelines.config.now`) is
the cycle's decision date while it decides and :func:`ingest_clock` (the end of the
answers' window) while it ingests, so a loop may run past today's date; outside the loop
the wall clock rules. Each step's wall and CPU seconds are in ``CycleFigures.seconds``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from cx_pipelines import config
from cx_pipelines.loop import live_experiment
from cx_pipelines.loop.live_experiment import ExperimentFigures
from cx_pipelines.loop.yardsticks import CycleFigures, cycle_figures
from cx_pipelines.world import simulator

DECISION_DATE_VARIABLE = "CX_DECISION_DATE"
EXPERIMENTS_VARIABLE = "CX_EXPERIMENTS_DIR"  # read by campaign_targets (CampaignSettings)
PREPARE_SELECTION = "group:sources or group:features or group:models"
DECIDE_SELECTION = "key:customer_scores or group:campaigns"  # scores as of the date
INGEST_SELECTION = (
    "key:interaction_results or key:interaction_results_quarantine or key:strategy_performance"
)
RETRAIN_SELECTION = "key:propensity_models or key:uplift_model or key:customer_scores"
DEFAULT_START = date(2026, 10, 1)  # the first day after the synthetic world ends


class LoopError(RuntimeError):
    """A step of the loop failed; the message names the cycle, the step and what failed."""


@dataclass(frozen=True)
class LoopSettings:
    """How many cycles, from which date, how far apart, and the simulator's seed."""

    cycles: int
    start: date = DEFAULT_START
    cycle_days: int = 7
    seed: int = 7
    retrain_after_results: int = 1
    policy_seed: int = 0
    challenger: str = ""  # "": no experiment; a planted challenger arm (loop.live_experiment)
    challenger_share: float = 0.2
    experiment_control_share: float | None = None  # the arms' hold-out while it runs
    experiment_spending: str | None = None  # the test's spending function (None: O'B-F)
    experiment_horizon: int | None = None  # the looks the test states (None: the cycles)

    def decision_date(self, cycle: int) -> date:
        return self.start + timedelta(days=self.cycle_days * cycle)


@dataclass
class LoopReport:
    """The figures of every cycle, in order."""

    settings: LoopSettings
    cycles: list[CycleFigures] = field(default_factory=list)
    experiment: list[ExperimentFigures] = field(default_factory=list)  # with a challenger

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([figures.as_row() for figures in self.cycles])


@contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for a while, restoring what was there before."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


GATE_SUFFIX = "_challenger_beats_champion"


def _materialize(selection: str, *, cycle: int, step: str, gated: bool = False) -> str:
    """Run a selection through Dagster; its run id, or :class:`LoopError` naming what failed.

    With ``gated``, a run whose only failures are promotion checks (a challenger that lost
    to its champion, so the champion and its scores stay) is an outcome, not an error.
    """
    from cx_pipelines.defs.runs import materialize

    result = materialize(selection)
    failed = result.get_failed_step_keys()
    if result.success or (gated and failed and all(k.endswith(GATE_SUFFIX) for k in failed)):
        return result.run_id
    where = f"cycle {cycle + 1}, {step}" if cycle >= 0 else step
    raise LoopError(
        f"{where}: Dagster run {result.run_id} failed ({', '.join(failed) or 'unknown steps'})"
    )


def champions() -> str:
    """The response models' champion versions, e.g. ``propensity v3, uplift v2``."""
    from cx_pipelines.ml import registry
    from cx_pipelines.ml.specs import load_spec

    uri = config.mlflow_tracking_uri()
    versions = []
    for spec_name in ("propensity", "uplift"):
        name = load_spec(spec_name).registered_name
        version = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=uri)
        versions.append(f"{spec_name} v{version or '-'}")
    return ", ".join(versions)


def prepare() -> str:
    """Materialise everything the first decision needs (sources, features, models, scores)."""
    with environment(CX_LOG_LEVEL=os.environ.get("CX_LOG_LEVEL", "WARNING")):
        return _materialize(PREPARE_SELECTION, cycle=-1, step="prepare", gated=True)


def export_runs_on(day: date, *, exports_dir: Path | None = None) -> list[Path]:
    """Export run folders (``exports/<campaign>/<run_key>/``) whose decisions are dated ``day``."""
    folder = exports_dir or config.exports_dir()
    runs = []
    for path in sorted(folder.glob("*/*/decisions.parquet")):
        decided = pq.read_table(path, columns=["decided_at"]).column("decided_at").to_pandas()
        if len(decided) and pd.Timestamp(decided.iloc[0]).date() == day:
            runs.append(path.parent)
    return runs


def cycle_decisions(runs: list[Path]) -> pd.DataFrame:
    """Every decided row of the cycle's export runs."""
    frames = [pq.read_table(run / "decisions.parquet").to_pandas() for run in runs]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def respond(runs: list[Path], *, seed: int, truth: simulator.WorldTruth) -> pd.DataFrame:
    """Let the simulated customers answer every export run; their answers, all runs together."""
    answers = [pd.read_parquet(simulator.respond(run, seed=seed, truth=truth)) for run in runs]
    return pd.concat(answers, ignore_index=True) if answers else pd.DataFrame()


def retrain_if_due(*, threshold: int, cycle: int) -> bool:
    """Retrain (one Dagster run of the models group) when the sensor's rule asks for it."""
    import dagster as dg

    from cx_pipelines.defs.training.sensors import retraining_request

    config.ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        request = retraining_request(instance, threshold=threshold)
    if isinstance(request, dg.SkipReason):
        return False
    _materialize(RETRAIN_SELECTION, cycle=cycle, step="retrain", gated=True)
    return True


def ingest_clock(day: date, *, cycle_days: int) -> datetime:
    """The loop's "now" when it ingests the answers to decisions of ``day``: the end of the
    cycle, and no earlier than the simulator's latest possible answer."""
    wait = max(float(cycle_days), simulator.RESPONSE_DELAY_DAYS[1])
    return datetime.combine(day, datetime.min.time()) + timedelta(days=wait)


@contextmanager
def timed(seconds: dict[str, float], step: str) -> Iterator[None]:
    """Add the block's wall and CPU seconds to ``seconds[step]`` / ``seconds[step + "_cpu"]``."""
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        seconds[step] = round(seconds.get(step, 0.0) + time.perf_counter() - wall, 3)
        cpu_key = f"{step}_cpu"
        seconds[cpu_key] = round(seconds.get(cpu_key, 0.0) + time.process_time() - cpu, 3)


def run_cycle(
    cycle: int,
    settings: LoopSettings,
    truth: simulator.WorldTruth,
    *,
    before_retrain: Callable[[CycleFigures], None] | None = None,
    experiment: list[ExperimentFigures] | None = None,
) -> CycleFigures:
    """Decide, respond, ingest, report, measure and (when due) retrain, on one date; with a
    challenger, the cycle's experiment figures are appended to ``experiment``."""
    day = settings.decision_date(cycle)
    seconds: dict[str, float] = {}
    clock = {DECISION_DATE_VARIABLE: day.isoformat(), config.NOW_VARIABLE: day.isoformat()}
    if settings.challenger:
        with timed(seconds, "plant"):
            folder = live_experiment.plant(
                truth, day, challenger=settings.challenger, share=settings.challenger_share,
                start=settings.start, end=settings.decision_date(settings.cycles - 1),
                horizon=settings.experiment_horizon or settings.cycles,
                control_share=settings.experiment_control_share,
                spending=settings.experiment_spending,
            )  # fmt: skip
        clock[EXPERIMENTS_VARIABLE] = str(folder)
    with environment(**clock):
        with timed(seconds, "decide"):
            _materialize(DECIDE_SELECTION, cycle=cycle, step="decide, target and export")
        runs = export_runs_on(day)
        if not runs:
            raise LoopError(
                f"cycle {cycle + 1} ({day}): the decide step wrote no export run dated {day}; "
                "are any campaigns active on that date?"
            )
        with timed(seconds, "respond"):
            decisions = cycle_decisions(runs)
            answers = respond(runs, seed=settings.seed, truth=truth)
        ingested = ingest_clock(day, cycle_days=settings.cycle_days).isoformat()
        with timed(seconds, "ingest"), environment(**{config.NOW_VARIABLE: ingested}):
            _materialize(INGEST_SELECTION, cycle=cycle, step="ingest and report")
        with timed(seconds, "measure"):
            figures = cycle_figures(
                cycle=cycle + 1,
                day=day,
                decisions=decisions,
                answers=answers,
                truth=truth,
                policy_seed=settings.policy_seed + cycle,
            )
            if settings.challenger and experiment is not None:
                experiment.append(_experiment_cycle(cycle, day, decisions, truth, experiment))
        figures.seconds = seconds
        if before_retrain is not None:  # e.g. evaluate on the log before models see it
            before_retrain(figures)
        with timed(seconds, "retrain"):
            figures.retrained = retrain_if_due(
                threshold=settings.retrain_after_results, cycle=cycle
            )
        figures.champions = champions()
    return figures


def _experiment_cycle(cycle, day, decisions, truth, earlier) -> ExperimentFigures:
    from cx_pipelines.campaigns.catalog import load_campaigns
    from cx_pipelines.loop.targeting_inputs import strategies_folder

    campaigns = [c for c in load_campaigns(strategies_folder() / "campaigns") if c.active_on(day)]
    return live_experiment.experiment_figures(
        cycle=cycle + 1, day=day, decisions=decisions, truth=truth, campaigns=campaigns,
        earlier=earlier,
    )  # fmt: skip


def run_loop(
    settings: LoopSettings,
    *,
    progress: bool | None = None,
    on_cycle: Callable[[CycleFigures], None] | None = None,
    before_retrain: Callable[[CycleFigures], None] | None = None,
    on_experiment: Callable[[ExperimentFigures], None] | None = None,
) -> LoopReport:
    """Run ``settings.cycles`` cycles; a progress bar on a terminal (``progress=None``)."""
    from tqdm import tqdm

    if settings.cycles < 1:
        raise LoopError(f"--cycles must be at least 1, got {settings.cycles}")
    if settings.challenger:
        live_experiment.check_settings(
            settings.challenger, settings.challenger_share,
            control_share=settings.experiment_control_share,
            spending=settings.experiment_spending, horizon=settings.experiment_horizon,
        )  # fmt: skip
    truth = simulator.WorldTruth.load()
    report = LoopReport(settings)
    disable = None if progress is None else not progress  # None: only on a terminal
    quiet = os.environ.get("CX_LOG_LEVEL", "WARNING")  # the bar and the table, not every step
    bar = tqdm(total=settings.cycles, desc="closed loop", unit="cycle", disable=disable)
    with environment(CX_LOG_LEVEL=quiet), bar:
        for cycle in range(settings.cycles):
            bar.set_postfix_str(f"deciding {settings.decision_date(cycle)}")
            figures = run_cycle(
                cycle, settings, truth, before_retrain=before_retrain, experiment=report.experiment
            )
            report.cycles.append(figures)
            if on_cycle is not None:
                on_cycle(figures)
            if on_experiment is not None and settings.challenger:
                on_experiment(report.experiment[-1])
            bar.update(1)
    return report
