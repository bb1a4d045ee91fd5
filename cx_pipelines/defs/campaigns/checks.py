"""Checks of the campaigns domain: campaigns validate, caps hold, exports reconcile."""

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cx_pipelines.campaigns import catalog
from cx_pipelines.campaigns.experiment import active_experiment, arm_campaigns, check_experiments
from cx_pipelines.campaigns.exports import verify_export
from cx_pipelines.defs.campaigns.assets import CampaignSettings
from cx_pipelines.defs.decisioning.assets import StrategyRepository


def _markdown_list(problems: list[str]) -> dg.MetadataValue:
    return dg.MetadataValue.md("\n".join(f"- `{p}`" for p in problems[:50]) or "none")


@dg.asset_check(asset="campaign_catalog", blocking=True)
def campaigns_validate(
    campaign_settings: CampaignSettings, strategies: StrategyRepository
) -> dg.AssetCheckResult:
    """Every campaign file validates (errors name file and line) and ids are unique."""
    from cx_pipelines.engine import check_strategy

    folder = campaign_settings.folder(strategies)
    campaigns, errors = catalog.check_campaigns(folder)
    problems = [error.describe() for error in errors]
    experiment_errors = check_experiments(campaign_settings.experiments_folder(strategies))[1]
    problems.extend(error.describe() for error in experiment_errors)
    if not campaigns and not errors:
        problems.append(f"no campaign files in {folder}")
    policy = strategies.folder() / campaign_settings.policy_strategy
    if not policy.exists():
        problems.append(f"contact-policy strategy {policy} does not exist")
    else:
        problems.extend(error.describe() for error in check_strategy(policy)[0])
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"campaigns": len(campaigns), "problems": _markdown_list(problems)},
    )


@dg.asset_check(asset="campaign_targets", blocking=True)
def one_offer_per_customer_within_caps(
    campaign_settings: CampaignSettings,
    strategies: StrategyRepository,
    campaign_targets: pd.DataFrame,
) -> dg.AssetCheckResult:
    """One campaign per customer; treated contacts within each volume cap and budget."""
    campaigns = {
        c.campaign_id: c for c in catalog.load_campaigns(campaign_settings.folder(strategies))
    }
    problems = []
    repeated = int(campaign_targets["customer_id"].duplicated().sum())
    if repeated:
        problems.append(f"{repeated} customers are in more than one campaign")
    if campaign_targets["contact_id"].duplicated().any():
        problems.append("contact ids repeat")
    probability = campaign_targets["selection_probability"].to_numpy(dtype=float)
    if len(probability) and not ((probability > 0) & (probability <= 1)).all():
        problems.append("selection probabilities outside (0, 1]")
    treated = campaign_targets[campaign_targets["group"] == "treated"]
    for campaign_id, count in treated.groupby("campaign_id").size().items():
        campaign = campaigns.get(campaign_id)
        if campaign is None:
            problems.append(f"{campaign_id} is not a campaign")
            continue
        if count > campaign.volume_cap:
            problems.append(f"{campaign_id}: {count} treated > volume cap {campaign.volume_cap}")
        if count * campaign.cost_per_contact > campaign.budget + 1e-9:
            problems.append(f"{campaign_id}: spend {count * campaign.cost_per_contact} > budget")
    problems.extend(_arm_cap_problems(treated, campaigns, campaign_settings, strategies))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={
            "rows": len(campaign_targets),
            "customers": int(campaign_targets["customer_id"].nunique()),
            "problems": _markdown_list(problems),
        },
    )


@dg.asset_check(asset="campaign_exports", additional_ins={"campaign_targets": dg.AssetIn()})
def exports_reconcile_with_targets(
    campaign_exports: pd.DataFrame, campaign_targets: pd.DataFrame
) -> dg.AssetCheckResult:
    """Each export matches its manifest and holds exactly the targets' rows and contact ids."""
    problems = []
    for row in campaign_exports.itertuples(index=False):
        folder = Path(row.folder)
        problems.extend(f"{row.campaign_id}: {p}" for p in verify_export(folder))
        expected = campaign_targets[campaign_targets["campaign_id"] == row.campaign_id]
        decisions = pd.read_parquet(folder / "decisions.parquet")
        contacts = pd.read_csv(folder / "contacts.csv")
        if not np.array_equal(
            np.sort(decisions["contact_id"].to_numpy()), np.sort(expected["contact_id"].to_numpy())
        ):
            problems.append(f"{row.campaign_id}: decision contact ids differ from campaign_targets")
        treated = expected[expected["group"] == "treated"]
        if set(contacts["contact_id"]) != set(treated["contact_id"]) or len(contacts) != len(
            treated
        ):
            problems.append(f"{row.campaign_id}: contacts differ from the treated targets")
    missing = set(campaign_targets["campaign_id"]) - set(campaign_exports["campaign_id"])
    problems.extend(f"{campaign_id}: targeted but not exported" for campaign_id in sorted(missing))
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"exports": len(campaign_exports), "problems": _markdown_list(problems)},
    )


def _arm_cap_problems(treated, campaigns, campaign_settings, strategies) -> list[str]:
    """In an experiment, each arm's treated contacts within its share of each cap."""
    arms = treated["test_group"].dropna() if "test_group" in treated else treated.iloc[0:0]
    if arms.empty:
        return []
    day = pd.Timestamp(treated["decided_at"].iloc[0]).date()
    experiment = active_experiment(campaign_settings.experiments_folder(strategies), day)
    if experiment is None:
        return [f"rows carry test groups {sorted(arms.unique())} but no experiment runs on {day}"]
    problems = []
    shares = {arm.name: arm.share for arm in experiment.arms}
    for (campaign_id, arm), count in treated.groupby(["campaign_id", "test_group"]).size().items():
        if arm not in shares:
            problems.append(f"{campaign_id}: test group {arm} is no arm of the experiment")
            continue
        (split,) = arm_campaigns([campaigns[campaign_id]], shares[arm])
        if count > split.volume_cap or count * split.cost_per_contact > split.budget + 1e-9:
            problems.append(f"{campaign_id}, arm {arm}: {count} treated exceed its share of caps")
    return problems
