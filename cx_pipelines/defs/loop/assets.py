"""``policy_evaluation``: what a candidate set of campaigns would have earned on the last
logged decision run, estimated off-policy (IPS, self-normalised IPS, doubly robust) before it
is deployed (:mod:`cx_pipelines.loop.candidate`).

The candidate is a campaign file or folder (config ``candidate``; by default the deployed
``strategies/campaigns/`` themselves, which checks the estimators against what the deployed
policy is reported to earn). Before any decision has come back there is nothing to
evaluate on: the asset then writes an empty table and says why, without failing the run.
"""

from pathlib import Path

import dagster as dg
import pandas as pd

from cx_pipelines.loop.candidate import CandidateError, evaluate_candidate
from cx_pipelines.loop.targeting_inputs import strategies_folder

GROUP = "loop"
COLUMNS = [
    "estimator",
    "value",
    "low",
    "high",
    "standard_error",
    "per_unit",
    "units",
    "supported_units",
    "treated_units",
    "scope",
    "unsupported_units",
    "unsupported_direct_value",
    "unsupported_share",
    "max_weight",
    "effective_sample_size",
    "candidate",
    "run_key",
    "decision_date",
]


class PolicyEvaluationConfig(dg.Config):
    """Which candidate, on which logged run, with which interval."""

    candidate: str = ""  # a campaign YAML file or folder; "" = the deployed campaigns
    run_key: str = ""  # "" = the latest logged run
    bootstrap: int = 0  # 0 = the variance formula; else seeded bootstrap resamples
    seed: int = 0


@dg.asset(
    group_name=GROUP,
    kinds={"pandas", "scipy"},
    deps=["interaction_results", "customer_scores", "campaign_catalog"],
)
def policy_evaluation(
    context: dg.AssetExecutionContext, config: PolicyEvaluationConfig
) -> dg.Output[pd.DataFrame]:
    """Off-policy estimates (IPS, SNIPS, doubly robust) of a candidate's incremental profit."""
    candidate = Path(config.candidate) if config.candidate else strategies_folder() / "campaigns"
    try:
        evaluation = evaluate_candidate(
            candidate, run_key=config.run_key or None, bootstrap=config.bootstrap, seed=config.seed
        )
    except CandidateError as error:
        context.log.warning(f"policy_evaluation: nothing evaluated: {error}")
        return dg.Output(
            pd.DataFrame(columns=COLUMNS),
            metadata={"evaluated": False, "reason": dg.MetadataValue.text(str(error))},
        )
    context.log.info(evaluation.describe())
    rows = [
        {
            **item.as_dict(),
            "candidate": evaluation.candidate,
            "run_key": evaluation.run_key,
            "decision_date": evaluation.decision_date,
        }
        for item in evaluation.estimates.values()
    ]
    doubly_robust = evaluation.estimates["doubly_robust"]
    return dg.Output(
        pd.DataFrame(rows, columns=COLUMNS),
        metadata={
            "evaluated": True,
            "candidate": evaluation.candidate,
            "run_key": evaluation.run_key,
            "logged_decisions": evaluation.logged_decisions,
            "doubly_robust_value": dg.MetadataValue.float(doubly_robust.value),
            "doubly_robust_interval": dg.MetadataValue.text(
                f"[{doubly_robust.low:,.2f}, {doubly_robust.high:,.2f}]"
            ),
            "unsupported_units": doubly_robust.unsupported_units,
            "unsupported_share": dg.MetadataValue.float(doubly_robust.unsupported_share),
            "summary": dg.MetadataValue.md(f"```\n{evaluation.describe()}\n```"),
        },
    )
