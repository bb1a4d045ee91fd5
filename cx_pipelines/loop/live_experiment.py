"""A live champion/challenger experiment inside the closed loop, with a planted challenger.

With ``LoopSettings.challenger`` set, the loop runs the campaigns as a split test
(:mod:`cx_pipelines.campaigns.experiment`): ``challenger_share`` of the customers form the
``challenger`` arm, the rest the ``champion`` arm (the platform's own targeting). The loop
writes the experiment file into ``$CX_HOME/experiments/`` (``CX_EXPERIMENTS_DIR`` while it
decides), the way a user would put one in ``strategies/campaigns/experiments/``:

* ``true_uplift`` — the **planted** challenger: it targets on a score file the loop writes
  before every decision from the world's truth (the true treated probability, with the
  simulator's contact fatigue from the contacts made so far, and the true uplift over the
  control probability), without exploration. Within its share of the caps it is the
  oracle, so it is truly better; the platform's test (``strategy_performance``) sees only
  the arms' outcomes, never that file's origin.
* ``same`` — an A/A test: the challenger arm targets exactly like the champion.

Per cycle :func:`experiment_figures` reports each arm's TRUE incremental profit per
customer (the truth's expected value of its treated contacts) beside the platform's
MEASURED one (treated outcomes over the control baseline, × margin − cost), cumulated over
the cycles so far, with the test's interval, p-value and whether it detects the challenger.

The experiment file states its **horizon** (the loop's cycles) before the first decision;
every cycle is a look of the group-sequential test (:mod:`cx_pipelines.feedback.sequential`):
detected when a look's ``|z|`` crosses its boundary (O'Brien–Fleming, the default: 5.37, 3.71,
2.97, 2.54, 2.25, 2.05 of six looks; ``LoopSettings.experiment_spending = "pocock"``: 2.50,
2.48, 2.45, 2.44, 2.42, 2.41), so looking after every cycle keeps the experiment's error rate
at 5 %. ``LoopSettings.experiment_control_share`` states the arms' hold-out share in the file
too (the treated contacts stay the caps' share; a larger hold-out measures the baseline of
high-margin campaigns with less noise).

Why the planted arm gains little after its first run (measured with
``benchmarks/experiment_tests.py --arms``): it earns 0.98–1.00 of its own arm's myopic
oracle every run, but it spends its best customers first; with the world's contact fatigue
(28 days) its arm's oracle is then 9–17 % below the champion arm's, which offsets its better
targeting once the champion's models have learned from the first run's log.

What the test can see at 20,000 customers (challenger share 0.5, hold-out 0.4, Pocock over
three cycles; ``benchmarks/experiment_tests.py --replays``, control group and outcomes drawn
again from the truth): the first look's standard error is 1.9 (seed 2) and 1.4–1.7 (seed 3)
per customer, nearly all of it the binomial noise of the mortgage campaigns' responses
(margin 1,200); with every baseline known it would still be 1.40 and 1.24 (the
treated-noise floor). Seed 3's TRUE gain (4.67 per customer at look 1) is detected in 75–88 %
of replays; seed 2's (1.87) in 12–15 % — out of reach of any unbiased test at this size (17 %
at the floor), it needs 8–10 times the contacts at the same gain per contact (165,000–210,000
customers with the campaigns' caps and budgets scaled with them: they are absolute, so more
customers alone add no contacts, and more runs add none of this arm's gain). The hold-out is
near its best: TRUE gain over the standard error at look 1 was 0.76 / 1.03 / 1.03 (seed 2)
and 2.32 / 2.76 / 2.49 (seed 3) with hold-outs 0.25 / 0.4 / 0.6 (a larger one narrows the
interval but dilutes both arms' targeting as much).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from cx_pipelines import config, warehouse
from cx_pipelines.campaigns.experiment import MAX_CONTROL_SHARE, SPENDING
from cx_pipelines.feedback.experiments import (
    ExperimentRuns,
    experiment_runs,
    incremental_profit_tests,
)
from cx_pipelines.feedback.sequential import OBRIEN_FLEMING, horizon_tests
from cx_pipelines.loop import policies
from cx_pipelines.loop.targeting_inputs import economics_of
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
from cx_pipelines.world import simulator

PLANTED_CHALLENGERS = ("true_uplift", "same")
EXPERIMENT_ID = "planted_challenger"
SCORES_FILE = "planted_scores.parquet"


class ExperimentSettingsError(ValueError):
    """The loop's challenger option names no known challenger or a share out of range."""


def check_settings(
    challenger: str, share: float, *, control_share: float | None = None,
    spending: str | None = None, horizon: int | None = None,
) -> None:  # fmt: skip
    if challenger not in PLANTED_CHALLENGERS:
        known = ", ".join(PLANTED_CHALLENGERS)
        raise ExperimentSettingsError(f"challenger must be one of {known}, not {challenger!r}")
    if not 0 < share < 1:
        raise ExperimentSettingsError(f"challenger share must be in (0, 1), got {share}")
    if control_share is not None and not 0 < control_share <= MAX_CONTROL_SHARE:
        raise ExperimentSettingsError(
            f"experiment control share must be in (0, {MAX_CONTROL_SHARE}], got {control_share}"
        )
    if spending is not None and spending not in SPENDING:
        known = ", ".join(SPENDING)
        raise ExperimentSettingsError(f"spending must be one of {known}, not {spending!r}")
    if horizon is not None and (isinstance(horizon, bool) or not isinstance(horizon, int)
                                or horizon < 1):  # fmt: skip
        raise ExperimentSettingsError(
            f"experiment horizon must be a positive number of runs, got {horizon!r}"
        )


def experiments_folder() -> Path:
    return config.cx_home() / "experiments"


def write_experiment(
    folder: Path, *, challenger: str, share: float, start: date, end: date,
    horizon: int | None = None, control_share: float | None = None, spending: str | None = None,
) -> Path:  # fmt: skip
    """The experiment file of the planted challenger (or the A/A test): its design (horizon,
    spending function, hold-out share of the arms) stated before the first decision."""
    design = {"horizon": horizon, "spending": spending, "control_share": control_share}
    targeting = {"scores": SCORES_FILE, "exploration": False} if challenger == "true_uplift" else {}
    arms = {
        "champion": {"share": round(1 - share, 12)},
        "challenger": {"share": share, **({"targeting": targeting} if targeting else {})},
    }
    document = {
        "experiment_id": EXPERIMENT_ID,
        "description": f"closed loop: planted challenger {challenger!r}",
        "salt": f"{EXPERIMENT_ID}_{challenger}",
        "start": start.isoformat(),
        "end": end.isoformat(),
        **{key: value for key, value in design.items() if value is not None},
        "arms": arms,
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{EXPERIMENT_ID}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def true_scores(truth: simulator.WorldTruth, day: date, *, exports_dir: Path) -> pd.DataFrame:
    """Every customer's true treated probability (fatigued by the contacts so far) and true
    uplift, for every offer × channel, in ``customer_scores``' column names."""
    ids = truth.customer_id
    recent = simulator.recent_contacts(
        ids,
        pd.Series(pd.Timestamp(day), index=range(len(ids))),
        exports_dir=exports_dir,
        exclude_run_key="",
    )
    rows = np.arange(len(ids))
    columns = {"customer_id": ids}
    for o, offer in enumerate(OFFER_TYPES):
        control = truth.control_probability(rows, np.full(len(ids), o))
        for c, channel in enumerate(OFFER_CHANNELS):
            treated = truth.treated_probability(
                rows, np.full(len(ids), o), np.full(len(ids), c), recent
            )
            columns[f"propensity__{offer}__{channel}"] = treated
            columns[f"uplift__{offer}__{channel}"] = treated - control
    return pd.DataFrame(columns)


def plant(
    truth: simulator.WorldTruth, day: date, *, challenger: str, share: float, start: date,
    end: date, horizon: int | None = None, control_share: float | None = None,
    spending: str | None = None,
) -> Path:  # fmt: skip
    """Write the experiment (and the planted scores of ``day``); the experiments folder."""
    folder = experiments_folder()
    write_experiment(
        folder, challenger=challenger, share=share, start=start, end=end, horizon=horizon,
        control_share=control_share, spending=spending,
    )  # fmt: skip
    if challenger == "true_uplift":
        scores = true_scores(truth, day, exports_dir=config.exports_dir())
        scores.to_parquet(folder / SCORES_FILE, index=False)
    return folder


@dataclass
class ExperimentFigures:
    """One cycle of the live experiment: truth and measurement, per arm and cumulated."""

    cycle: int
    decision_date: str
    customers: dict[str, int]
    treated: dict[str, int]
    true_profit_per_customer: dict[str, float]  # this cycle
    measured_profit_per_customer: dict[str, float]  # this cycle
    true_difference: float  # challenger − champion per customer, cycles so far
    measured_difference: float
    low: float
    high: float
    p_value: float
    detected: bool  # a look so far crossed its boundary, with the sign of the truth
    customers_still_needed: float
    cycle_p_value: float = float("nan")
    true_totals: dict[str, float] = field(default_factory=dict)  # this cycle, per arm
    horizon: int = 0  # the looks stated up front (0: none stated, each look a fixed test)
    boundary: float = float("nan")  # this look's |z| boundary
    nominal_alpha: float = float("nan")  # the nominal level that boundary is
    z: float = float("nan")
    spending: str = OBRIEN_FLEMING  # the stated spending function of the boundaries

    def as_row(self) -> dict[str, object]:
        return asdict(self)

    def describe(self) -> str:
        true, measured = self.true_profit_per_customer, self.measured_profit_per_customer
        return (
            f"  experiment cycle {self.cycle}: per customer TRUE champion "
            f"{true['champion']:.3f} / challenger {true['challenger']:.3f}, measured "
            f"{measured['champion']:.3f} / {measured['challenger']:.3f}; cumulative "
            f"challenger − champion measured {self.measured_difference:.3f} "
            f"[{self.low:.3f}, {self.high:.3f}] (TRUE {self.true_difference:.3f}), "
            f"z = {self.z:.2f} (boundary {self.boundary:.2f} of look {self.cycle}/"
            f"{self.horizon or '-'}, {self.spending}), nominal p = {self.p_value:.3g}, "
            f"{'DETECTED' if self.detected else 'not detected'}, "
            f"customers still needed {self.customers_still_needed:,.0f}"
        )


def _true_totals(decisions: pd.DataFrame, truth, run_key: str, day: date, campaigns) -> dict:
    treated = decisions[decisions["group"] == "treated"]
    recent = simulator.recent_contacts(
        treated["customer_id"].to_numpy(),
        pd.Series(pd.Timestamp(day), index=range(len(treated))),
        exports_dir=config.exports_dir(),
        exclude_run_key=run_key,
    )
    value = policies.action_values(truth, treated, economics_of(campaigns), recent=recent)
    totals = pd.Series(value, index=treated.index).groupby(treated["test_group"]).sum()
    return {str(arm): float(total) for arm, total in totals.items()}


def experiment_figures(
    *, cycle: int, day: date, decisions: pd.DataFrame, truth: simulator.WorldTruth,
    campaigns: list, earlier: list[ExperimentFigures],
) -> ExperimentFigures:  # fmt: skip
    """The cycle's truth per arm and the platform's test on every cycle so far."""
    run_key = str(decisions["run_key"].iloc[0])
    runs = experiment_runs(config.exports_dir())[EXPERIMENT_ID]
    this_run = runs.arm_customers[runs.arm_customers["run_key"] == run_key]
    customers = dict(zip(this_run["test_group"], this_run["customers"].astype(int), strict=True))
    totals = _true_totals(decisions, truth, run_key, day, campaigns)
    true = {arm: totals.get(arm, 0.0) / size for arm, size in customers.items()}
    results = warehouse.read_table("interaction_results")
    results = results[results["test_group"].notna()]
    # no horizon stated: each look is judged as a fixed test (repeated looks inflate errors)
    horizon = runs.horizon or runs.arm_customers["run_key"].nunique()
    looks = horizon_tests(results, runs, horizon=horizon, spending=runs.spending or OBRIEN_FLEMING)
    cumulative = looks.iloc[-1]
    single = incremental_profit_tests(
        results[results["run_key"] == run_key],
        ExperimentRuns(runs.experiment_id, this_run, runs.economics),
    ).iloc[0]
    most = runs.arm_customers.groupby("test_group")["customers"].max()
    so_far = {
        arm: totals.get(arm, 0.0) + sum(f.true_totals.get(arm, 0.0) for f in earlier)
        for arm in customers
    }
    true_difference = so_far["challenger"] / most["challenger"]
    true_difference -= so_far["champion"] / most["champion"]
    return ExperimentFigures(
        cycle=cycle,
        decision_date=day.isoformat(),
        customers=customers,
        treated=decisions[decisions["group"] == "treated"]["test_group"].value_counts().to_dict(),
        true_profit_per_customer=true,
        measured_profit_per_customer={
            "champion": float(single["champion_profit_per_customer"]),
            "challenger": float(single["challenger_profit_per_customer"]),
        },
        true_difference=float(true_difference),
        measured_difference=float(cumulative["difference"]),
        low=float(cumulative["low"]),
        high=float(cumulative["high"]),
        p_value=float(cumulative["p_value"]),
        detected=bool(
            looks["crossed"].any()
            and np.sign(looks.loc[looks["crossed"], "difference"].iloc[0])
            == np.sign(true_difference)
        ),
        customers_still_needed=float(cumulative["customers_still_needed"]),
        cycle_p_value=float(single["p_value"]),
        true_totals={arm: totals.get(arm, 0.0) for arm in customers},
        horizon=int(runs.horizon or 0),
        boundary=float(cumulative["boundary"]),
        nominal_alpha=float(cumulative["nominal_alpha"]),
        z=float(cumulative["z"]),
        spending=runs.spending or OBRIEN_FLEMING,
    )
