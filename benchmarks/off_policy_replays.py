"""Bias and spread of the closed loop's off-policy estimate, over replays of a kept last log.

    python benchmarks/off_policy_replays.py FOLDER [--replays 200] [--seed 0]

FOLDER is a copy of a ``last-log`` folder (``benchmarks/closed_loop.py --keep-last-log``;
the candidate's campaign files are written into it). The candidate is the one
``closed_loop.py`` evaluates (the deployed campaigns with half their caps, over the day's
population), with its TRUE value. Every replay keeps the log's campaign draws (who was
decided for which campaign, exploration included: the targeting is not re-run) and draws
again what the run randomised: each row's arm (control with its campaign's control share,
unless an earlier run of a persistent campaign fixed it) and its outcome from the world's
truth (the simulator's probability: treated with the contact fatigue at the decision,
control without contact). The estimators then read the replayed log, the models and the
platform's contact history only, exactly as in ``closed_loop.py``. Beside them:

* ``dr_true_model``: doubly robust with the TRUE probabilities as its direct model; its
  residuals are pure chance, so its spread is the design's own (no estimator unbiased
  whatever its models believe does better on this log);
* ``direct_method``: the recalibrated models alone, no residuals.

Per estimator: mean, sd, bias against what it estimates over such replays (± two standard
errors of the mean), the share of intervals covering the truth, and the share of replays
within ±10 % of the true value (the issue's target). Conditional on the campaign draws, a
logged candidate action with campaign probability ``P`` counts ``1 / P`` times in IPS (it
stands for the units whose draw went elsewhere), so IPS's mean over replays is
``Σ τ / P`` over the logged candidate actions (``ips_replay_target``), not the truth; doubly
robust with the true model averages to the truth itself. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import closed_loop  # noqa: E402  (the candidate and its truth, as the benchmark builds them)

from cx_pipelines.loop import direct_model, off_policy  # noqa: E402
from cx_pipelines.loop.cycle import environment  # noqa: E402
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES  # noqa: E402
from cx_pipelines.world import simulator  # noqa: E402

NAMES = ("ips", "snips", "doubly_robust", "dr_true_model", "direct_method")


def row_probabilities(setting, truth) -> tuple[np.ndarray, np.ndarray]:
    """Each logged row's TRUE response probability if treated (fatigue at the decision)
    and if held out."""
    log = setting.log
    rows = truth.positions(log["customer_id"].to_numpy())
    offers = simulator.codes(log["offer_type"], OFFER_TYPES, column="offer_type")
    channels = simulator.codes(log["channel"], OFFER_CHANNELS, column="channel")
    exposure = closed_loop.exposure_of(log["customer_id"].to_numpy(), setting.day, setting.run_key)
    treated = truth.treated_probability(rows, offers, channels, exposure)
    return treated, truth.control_probability(rows, offers)


def true_model(setting, truth) -> pd.DataFrame:
    """The candidate's actions with the TRUE probabilities as ``p_response`` and ``uplift``."""
    actions = setting.policy.actions
    rows = truth.positions(actions["customer_id"].to_numpy())
    offers = simulator.codes(actions["offer_type"], OFFER_TYPES, column="offer_type")
    channels = simulator.codes(actions["channel"], OFFER_CHANNELS, column="channel")
    treated = truth.treated_probability(rows, offers, channels, setting.exposure)
    return actions.assign(
        p_response=treated, uplift=treated - truth.control_probability(rows, offers)
    )


def replay_logs(setting, truth, *, count: int, seed: int):
    """``count`` logs with the arms (where this run drew them) and outcomes drawn again."""
    log, design = setting.log, setting.design
    treated_p, control_p = row_probabilities(setting, truth)
    share = log["campaign_id"].map(design.control_share).to_numpy(float)
    arm = off_policy.arm_probability(log, design.control_share)
    campaign_draw = log["selection_probability"].to_numpy(float) / arm
    fixed = off_policy.pair_keys(log).isin(design.revealed).to_numpy()
    rng = np.random.default_rng(seed)
    for _ in range(count):
        control = np.where(
            fixed, (log["group"] == "control").to_numpy(), rng.random(len(log)) < share
        )
        probability = np.where(control, share, 1 - share)
        responded = rng.random(len(log)) < np.where(control, control_p, treated_p)
        yield log.assign(
            group=np.where(control, "control", "treated"),
            selection_probability=np.where(
                fixed, log["selection_probability"], campaign_draw * probability
            ),
            responded=responded.astype(int),
        )


def ips_replay_target(setting) -> float:
    """What IPS averages to over replays that keep the campaign draws: ``Σ τ / P(campaign)``
    over the candidate actions logged with their offer and channel."""
    log, actions = setting.log, setting.policy.actions
    arm = off_policy.arm_probability(log, setting.design.control_share)
    draw = pd.Series(log["selection_probability"].to_numpy() / arm, index=off_policy.pair_keys(log))
    logged = draw.reindex(off_policy.pair_keys(actions)).to_numpy(float)
    matched = (
        ~np.isnan(logged) & ~off_policy.pair_keys(actions).isin(setting.design.revealed).to_numpy()
    )
    return float((setting.true_value[matched] / logged[matched]).sum())


def replays(folder: Path, *, count: int, seed: int) -> dict:
    """Run the replays on ``folder`` and summarise each estimator against the truth."""
    with environment(CX_HOME=str(folder)):
        truth = simulator.WorldTruth.load()
        setting = closed_loop.candidate_setting(folder, truth)
        spread = closed_loop.design_spread(setting, truth)
        oracle_actions = true_model(setting, truth)
        margin, cost = setting.policy.margin, setting.policy.cost
        values = {name: [] for name in NAMES}
        covered = {name: [] for name in NAMES}
        value = float(setting.true_value.sum())
        for number, log in enumerate(replay_logs(setting, truth, count=count, seed=seed)):
            print(f"replay {number + 1}/{count}", file=sys.stderr, flush=True)
            actions = direct_model.recalibrated(
                log, setting.policy.actions, recent=setting.policy.recent
            )
            estimates = off_policy.evaluate(log, actions, **setting.options)
            estimates["dr_true_model"] = off_policy.evaluate(
                log, oracle_actions, **setting.options
            )["doubly_robust"]
            for name, item in estimates.items():
                if name in values:
                    values[name].append(item.value)
                    covered[name].append(item.low <= value <= item.high)
            chosen_margin = actions["campaign_id"].map(margin).to_numpy(float)
            chosen_cost = actions["campaign_id"].map(cost).to_numpy(float)
            direct = chosen_margin * actions["uplift"].to_numpy(float) - chosen_cost
            values["direct_method"].append(float(np.nansum(direct)))
    target = ips_replay_target(setting)
    summary = {}
    for name, draws in values.items():
        draws = np.asarray(draws)
        aim = target if name in ("ips", "snips") else value
        summary[name] = {
            "mean": float(draws.mean()),
            "sd": float(draws.std(ddof=1)),
            "bias": float(draws.mean() - aim),
            "bias_standard_error": float(draws.std(ddof=1) / np.sqrt(len(draws))),
            "covers_truth": float(np.mean(covered[name])) if name != "direct_method" else None,
            "within_ten_percent": float(np.mean(np.abs(draws - value) <= 0.1 * abs(value))),
        }
    return {
        "folder": str(folder),
        "run_key": setting.run_key,
        "replays": count,
        "true_value": value,
        "true_supported_value": float(setting.true_value[setting.supported].sum()),
        "ips_replay_target": target,
        "candidate_actions": len(setting.policy.actions),
        "design": {**asdict(spread), "units_factor": spread.units_factor_for_ten_percent},
        "estimators": summary,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a copy of a kept last-log folder")
    parser.add_argument("--replays", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args(argv)
    result = replays(Path(arguments.folder).resolve(), count=arguments.replays, seed=arguments.seed)
    print(
        f"logged run {result['run_key']}: candidate TRUE value {result['true_value']:,.0f} "
        f"({result['candidate_actions']:,} actions), {result['replays']} replays of arms and "
        "outcomes"
    )
    design = {k: v for k, v in result["design"].items() if k != "units_factor"}
    for line in closed_loop.DesignSpread(**design).describe():
        print(line)
    print(
        f"  IPS's mean over such replays (campaign draws kept): {result['ips_replay_target']:,.0f}"
    )
    for name, row in result["estimators"].items():
        cover = (
            ""
            if row["covers_truth"] is None
            else f", interval covers the truth {row['covers_truth']:.0%}"
        )
        print(
            f"  {name:<14} mean {row['mean']:>11,.0f}  sd {row['sd']:>10,.0f} "
            f"({row['sd'] / abs(result['true_value']):.2f}× the truth)  "
            f"bias {row['bias']:>+10,.0f} "
            f"± {2 * row['bias_standard_error']:,.0f}{cover}; within ±10 % in "
            f"{row['within_ten_percent']:.0%} of replays"
        )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
