"""Have the response models learned contact fatigue? Their fitted effect of recent contacts
next to the world's true effect, for every registered version (one per training run).

    python benchmarks/fatigue_effect.py --home /tmp/loop/seed-1/cx

Reads a CX_HOME the closed loop ran in (``benchmarks/closed_loop.py --home``). For a
sample of customers (features as the models see them) and every offer × channel, it sets
``recent_treated_contacts`` to 0, 1, 2, 3 and prints the mean predicted uplift and
propensity of each version of ``cx_uplift`` and ``cx_propensity``, and the mean true
uplift and treated response from the world's truth with the simulator's fatigue
(log-odds −0.35 per contact). For the uplift versions it also prints the fitted step per
contact on the log-odds of each arm (mean over the sample and offer × channel; the truth is
−0.35 on the treated arm and 0 on the control arm), and the treated arm's step from 0 to 1
contact for each offer × channel the contact history holds: the world's fatigue is the same
for every pair, so a pair whose step is far from the others' has learned something else (in
main's 10k loop, seed 2, mortgage × branch came out −0.15 and personal loan × call centre
+0.07: the lists of a campaign keep its best customers, so its own slope picks up who they
are). Version 1 is trained on the base history only (where the feature is almost always 0);
later versions have the loop's results. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

PRESSURES = (0, 1, 2, 3)


def treated_log_odds(model, features, pressure: int) -> np.ndarray:
    """The treated arm's log-odds of every row at ``pressure`` recent contacts."""
    from cx_pipelines.ml import training_data

    treated, _ = model.predict_arms(
        features.assign(**{training_data.RECENCY_FEATURE: float(pressure)})
    )
    clipped = np.clip(treated, 1e-12, 1 - 1e-12)
    return np.log(clipped / (1 - clipped))


def pair_steps(model, features, pairs: list[tuple[str, str]]) -> dict[str, float]:
    """The treated arm's mean log-odds step from 0 to 1 recent contact, per offer × channel."""
    steps = {}
    for offer, channel in pairs:
        frame = features.assign(offer_type=offer, channel=channel)
        step = treated_log_odds(model, frame, 1) - treated_log_odds(model, frame, 0)
        steps[f"{offer} x {channel}"] = round(float(step.mean()), 3)
    return steps


def log_odds_steps(model, features) -> dict[str, list[float]]:
    """Mean change of each arm's log-odds from k to k + 1 recent contacts (k = 0, 1, 2), over
    the customers and every offer × channel."""
    from cx_pipelines.ml import training_data
    from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

    pairs = [(offer, channel) for offer in OFFER_TYPES for channel in OFFER_CHANNELS]
    stacked = features.loc[features.index.repeat(len(pairs))].assign(
        offer_type=[offer for offer, _ in pairs] * len(features),
        channel=[channel for _, channel in pairs] * len(features),
    )
    logits: dict[str, list[float]] = {"treated": [], "control": []}
    for pressure in PRESSURES:
        arms = model.predict_arms(
            stacked.assign(**{training_data.RECENCY_FEATURE: float(pressure)})
        )
        for arm, probability in zip(("treated", "control"), arms, strict=True):
            clipped = np.clip(probability, 1e-12, 1 - 1e-12)
            logits[arm].append(float(np.mean(np.log(clipped / (1 - clipped)))))
    return {arm: np.diff(values).tolist() for arm, values in logits.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--home", required=True, help="the CX_HOME the loop ran in")
    parser.add_argument("--sample", type=int, default=2_000, help="customers scored")
    args = parser.parse_args(argv)
    os.environ["CX_HOME"] = args.home
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    os.environ.pop("CX_SOURCE_URL", None)

    from cx_pipelines import config, warehouse
    from cx_pipelines.defs.training.challenger import as_of_date
    from cx_pipelines.ml import registry, training_data
    from cx_pipelines.ml.supervised import propensity, uplift
    from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES
    from cx_pipelines.world import simulator

    tables = {
        name: warehouse.read_table(name) for name in ("customers", "accounts", "transactions")
    }
    as_of = as_of_date(tables["transactions"], None)
    features = training_data.customer_features(*tables.values(), as_of=as_of)
    features = features.sample(min(args.sample, len(features)), random_state=0)
    truth = simulator.WorldTruth.load()
    rows = truth.positions(features["customer_id"].to_numpy())
    history = training_data.contacts(
        warehouse.read_table("offer_history"),
        warehouse.read_table("interaction_results")
        if warehouse.table_exists("interaction_results")
        else None,
    )
    pairs = sorted(map(tuple, history[["offer_type", "channel"]].drop_duplicates().to_numpy()))

    result: dict = {"true": {}, "uplift": {}, "propensity": {}}
    for pressure in PRESSURES:
        recent = np.full(len(rows), pressure)
        lift, take_up = [], []
        for offer_code in range(len(OFFER_TYPES)):
            offers = np.full(len(rows), offer_code)
            control = truth.control_probability(rows, offers)
            for channel_code in range(len(OFFER_CHANNELS)):
                channels = np.full(len(rows), channel_code)
                treated = truth.treated_probability(rows, offers, channels, recent)
                lift.append(np.mean(treated - control))
                take_up.append(np.mean(treated))
        result["true"][pressure] = {"uplift": float(np.mean(lift)), "p": float(np.mean(take_up))}

    uri = config.mlflow_tracking_uri()
    scorers = {"uplift": uplift.score_offer_channels, "propensity": propensity.score_offer_channels}
    for name, scorer in scorers.items():
        versions = registry.client(uri).search_model_versions(f"name='cx_{name}'")
        for version in sorted(versions, key=lambda item: int(item.version)):
            model = registry.load_model(f"cx_{name}", str(version.version), tracking_uri=uri)
            uses = training_data.RECENCY_FEATURE in getattr(model, "features", [])
            means = {}
            for pressure in PRESSURES:
                frame = features.assign(**{training_data.RECENCY_FEATURE: float(pressure)})
                scores = scorer(model, frame, offer_types=OFFER_TYPES, channels=OFFER_CHANNELS)
                means[pressure] = float(scores.drop(columns="customer_id").to_numpy().mean())
            result[name][str(version.version)] = {
                "uses_feature": uses,
                "promotion": version.tags.get("promotion"),
                "mean_by_recent_contacts": means,
                **(
                    {
                        "log_odds_steps": log_odds_steps(model, features),
                        "treated_step_by_pair": pair_steps(model, features, pairs),
                    }
                    if name == "uplift"
                    else {}
                ),
            }

    print(f"{'recent contacts':>16} " + " ".join(f"{p:>9}" for p in PRESSURES))
    print(
        f"{'true uplift':>16} " + " ".join(f"{result['true'][p]['uplift']:9.4f}" for p in PRESSURES)
    )
    for name in scorers:
        for version, figures in result[name].items():
            means = figures["mean_by_recent_contacts"]
            label = f"{name} v{version}"
            print(
                f"{label:>16} "
                + " ".join(f"{means[p]:9.4f}" for p in PRESSURES)
                + f"  ({figures['promotion']}, feature used: {figures['uses_feature']})"
            )
    for version, figures in result["uplift"].items():
        steps = figures["log_odds_steps"]
        print(
            f"uplift v{version} log-odds step per contact, treated "
            + " ".join(f"{step:7.3f}" for step in steps["treated"])
            + " (true -0.350), control "
            + " ".join(f"{step:7.3f}" for step in steps["control"])
            + " (true 0)"
        )
        by_pair = figures["treated_step_by_pair"].items()
        print(
            f"uplift v{version} treated step 0 -> 1 by offer x channel (true -0.350 each): "
            + ", ".join(f"{pair} {step:.2f}" for pair, step in by_pair)
        )
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
