"""Campaign assets: the campaign catalog, the optimised targeting lists and their exports.

``campaign_catalog`` lists every campaign file of ``strategies/campaigns/`` (its blocking
check refuses invalid ones); ``campaign_targets`` decides, for the campaigns active on the
decision date, one offer per customer under the caps and the strategy's contact policy
(:func:`cx_pipelines.campaigns.target`); ``campaign_exports`` writes them for the
action-taking systems (:mod:`cx_pipelines.campaigns.exports`, INTERFACES.md §2).

``interaction_results`` (the feedback domain's table) is read from the warehouse when it
exists rather than declared as a dependency: it is matched against these exports, so
declaring it would close a cycle in the asset graph.
"""

import hashlib
import os
from datetime import date
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from cx_pipelines import config, warehouse
from cx_pipelines.campaigns import catalog as campaign_catalog_module
from cx_pipelines.campaigns.catalog import CampaignValidationError
from cx_pipelines.campaigns.experiment import (
    Experiment,
    ScoreFileError,
    active_experiment,
    read_scores,
)
from cx_pipelines.campaigns.population import (
    contact_history,
    population_attributes,
    service_contacts,
)
from cx_pipelines.campaigns.targeting import TargetingSettings, target
from cx_pipelines.defs.decision_date import DECISION_DATE_VARIABLE, decision_date
from cx_pipelines.defs.decisioning.assets import StrategyRepository

GROUP = "campaigns"
EXPERIMENTS_VARIABLE = "CX_EXPERIMENTS_DIR"
INTERACTION_RESULTS = "interaction_results"


class CampaignSettings(dg.ConfigurableResource):
    """Where campaigns live, the decision date, the contact-policy strategy, exploration."""

    directory: str = ""  # default: <strategies folder>/campaigns
    experiments_directory: str = ""  # default: CX_EXPERIMENTS_DIR, else <campaigns>/experiments
    decision_date: str = ""  # YYYY-MM-DD; "" = CX_DECISION_DATE, else the day after the data
    policy_strategy: str = "omnichannel.yaml"  # whose engagement policies apply
    exploration_share: float = 0.1
    mature_positives: int = 50
    exploration_per_customer: float = 0.5
    thompson_scale: float = 0.0  # > 0: Thompson draws (campaigns/targeting.py; measured, off)
    thompson_draws: int = 16
    exports_directory: str = ""  # default: $CX_HOME/exports

    def folder(self, strategies: StrategyRepository) -> Path:
        return Path(self.directory) if self.directory else strategies.folder() / "campaigns"

    def experiments_folder(self, strategies: StrategyRepository) -> Path:
        """Where champion/challenger experiments live (read at run time, like the date)."""
        configured = self.experiments_directory or os.environ.get(EXPERIMENTS_VARIABLE)
        return Path(configured) if configured else self.folder(strategies) / "experiments"

    def exports_root(self) -> Path:
        return Path(self.exports_directory) if self.exports_directory else config.exports_dir()

    def resolved_date(self, transactions: pd.DataFrame) -> date:
        """The configured date (also read from CX_DECISION_DATE at run time), else the day
        after the last transaction: a date from the inputs, never the wall clock."""
        return decision_date(transactions, self.decision_date)


def campaign_settings_from_environment() -> CampaignSettings:
    """Settings whose decision date is ``dg.EnvVar("CX_DECISION_DATE")`` when it is set."""
    if os.environ.get(DECISION_DATE_VARIABLE):
        return CampaignSettings(decision_date=dg.EnvVar(DECISION_DATE_VARIABLE))
    return CampaignSettings()


def _catalog_rows(folder: Path) -> pd.DataFrame:
    rows = []
    for path in campaign_catalog_module.campaign_files(folder):
        campaign, errors = campaign_catalog_module.check_campaign_file(path)
        row = {
            "file": path.name,
            "valid": campaign is not None,
            "errors": "\n".join(e.describe() for e in errors),
            "campaign_id": None,
            "offer_type": None,
            "channel": None,
            "treatment": None,
            "cost_per_contact": np.nan,
            "margin_per_response": np.nan,
            "budget": np.nan,
            "volume_cap": np.nan,
            "control_share": np.nan,
            "start": None,
            "end": None,
            "content_hash": None,
        }
        if campaign is not None:
            row.update(
                campaign_id=campaign.campaign_id,
                offer_type=campaign.offer,
                channel=campaign.channel,
                treatment=campaign.treatment,
                cost_per_contact=campaign.cost_per_contact,
                margin_per_response=campaign.margin_per_response,
                budget=campaign.budget,
                volume_cap=campaign.volume_cap,
                control_share=campaign.control_share,
                start=campaign.start.isoformat(),
                end=campaign.end.isoformat(),
                content_hash=campaign.content_hash,
            )
        rows.append(row)
    return pd.DataFrame(rows)


@dg.asset(group_name=GROUP, kinds={"yaml", "pandas"})
def campaign_catalog(
    context: dg.AssetExecutionContext,
    campaign_settings: CampaignSettings,
    strategies: StrategyRepository,
) -> dg.Output:
    """Every campaign file with its offer, channel, caps, dates, content hash and validity."""
    folder = campaign_settings.folder(strategies)
    catalog = _catalog_rows(folder)
    invalid = int((~catalog["valid"]).sum()) if len(catalog) else 0
    context.log.info(f"{len(catalog)} campaign files in {folder}, {invalid} invalid")
    return dg.Output(
        catalog,
        metadata={"campaigns": len(catalog), "invalid": invalid, "folder": str(folder)},
    )


def load_validated_campaigns(settings: CampaignSettings, strategies: StrategyRepository):
    """The campaigns, refusing files that changed since ``campaign_catalog`` validated them."""
    try:
        campaigns = campaign_catalog_module.load_campaigns(settings.folder(strategies))
    except campaign_catalog_module.CampaignValidationError as error:
        raise dg.Failure(f"campaigns do not validate:\n{error}") from None
    listed = warehouse.read_table("campaign_catalog")
    validated = dict(zip(listed["campaign_id"], listed["content_hash"], strict=True))
    for campaign in campaigns:
        if validated.get(campaign.campaign_id) != campaign.content_hash:
            raise dg.Failure(
                f"{campaign.file} changed since campaign_catalog validated it; "
                "re-materialise campaign_catalog so its check runs on this version"
            )
    return campaigns


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """Short content hash of a table (values and column names, not the row index)."""
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(hashed.tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()[:16]


RUN_ID_SUFFIX = "_mlflow_run"


def model_versions(scores: pd.DataFrame) -> dict[str, str | None]:
    """The model versions ``customer_scores`` was made with (``<model>_model_version`` etc.)."""
    columns = [c for c in scores.columns if c.endswith(("_model_version", RUN_ID_SUFFIX))]
    return {
        c: (None if scores[c].isna().all() else str(scores[c].dropna().iloc[0])) for c in columns
    }


def content_inputs(scores: pd.DataFrame, versions: dict[str, str | None]) -> dict[str, object]:
    """What the run key knows of the models: their content, not MLflow's random run ids.

    Registered models count by name/version (``cx_propensity/7``: numbered in registration
    order, and a retraining on unchanged inputs reuses its version); the BTYD scores, which
    are refitted rather than registered, count by their values, which ``customer_scores``
    holds. The ``*_mlflow_run`` ids (random per run) stay out, so the same loop run twice
    gets the same run keys; they are kept in the exports' ``model_versions`` for tracing.
    """
    stable = {key: value for key, value in versions.items() if not key.endswith(RUN_ID_SUFFIX)}
    content = scores.drop(columns=[c for c in scores.columns if c.endswith(RUN_ID_SUFFIX)])
    return {
        "model_versions": stable,
        "customer_scores": {"rows": len(scores), "hash": frame_fingerprint(content)},
    }


@dg.asset(
    group_name=GROUP,
    kinds={"scipy", "pandas"},
    deps=["campaign_catalog", "customer_segments"],
)
def campaign_targets(
    context: dg.AssetExecutionContext,
    campaign_settings: CampaignSettings,
    strategies: StrategyRepository,
    customer_scores: pd.DataFrame,
    customers: pd.DataFrame,
    accounts: pd.DataFrame,
    transactions: pd.DataFrame,
    offer_history: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Ranked targeting lists: one offer per customer across campaigns, under caps and policy."""
    from cx_pipelines.engine import load_strategy

    campaigns = load_validated_campaigns(campaign_settings, strategies)
    strategy = load_strategy(strategies.folder() / campaign_settings.policy_strategy)
    decision_date = campaign_settings.resolved_date(transactions)
    segments = (
        warehouse.read_table("customer_segments")
        if warehouse.table_exists("customer_segments")
        else None
    )
    results = (
        warehouse.read_table(INTERACTION_RESULTS)
        if warehouse.table_exists(INTERACTION_RESULTS)
        else None
    )
    population = population_attributes(
        customers,
        accounts,
        transactions,
        as_of=pd.Timestamp(decision_date),
        customer_scores=customer_scores,
        segments=segments,
    )
    service = service_contacts()  # the real-time service's contacts count against the caps too
    history = contact_history(offer_history, results, service)
    settings = TargetingSettings(
        decision_date=decision_date,
        exploration_share=campaign_settings.exploration_share,
        mature_positives=campaign_settings.mature_positives,
        exploration_per_customer=campaign_settings.exploration_per_customer,
        thompson_scale=campaign_settings.thompson_scale,
        thompson_draws=campaign_settings.thompson_draws,
    )
    experiment, arm_scores, experiment_inputs = load_experiment(
        campaign_settings.experiments_folder(strategies), decision_date
    )
    versions = model_versions(customer_scores)
    content = content_inputs(customer_scores, versions)
    inputs = {
        "decision_date": decision_date.isoformat(),
        "campaigns": {c.campaign_id: f"{c.file}@{c.content_hash}" for c in campaigns},
        "policy_strategy": f"{strategy.name}@{strategy.content_hash}",
        "model_versions": content["model_versions"],
        "tables": {
            "population": {"rows": len(population), "hash": frame_fingerprint(population)},
            "customer_scores": content["customer_scores"],
            "contact_history": {"rows": len(history), "hash": frame_fingerprint(history)},
            "service_contacts": len(service),
            "interaction_results_present": results is not None,
        },
        **experiment_inputs,  # nothing without an experiment: run keys stay as they were
    }
    result = target(
        campaigns,
        population,
        customer_scores,
        history,
        caps=[(cap.channel, cap.max, cap.period_days) for cap in strategy.contact_caps],
        decline_limit=strategy.decline_limit,
        settings=settings,
        strategy_hash=strategy.content_hash,
        model_versions=versions,
        fingerprint=inputs,
        experiment=experiment,
        arm_scores=arm_scores,
    )
    summary = result.summary
    context.log.info(
        f"run {result.run_key}: {summary['treated']} treated, {summary['control']} control, "
        f"{summary['explored']} explored over {len(summary['active_campaigns'])} campaigns; "
        f"certified gap {summary['gap']:.2e}"
    )
    return dg.Output(
        result.targets,
        metadata={
            "run_key": result.run_key,
            "decision_date": decision_date.isoformat(),
            "strategy_hash": strategy.content_hash,
            "estimated_response_rate": dg.MetadataValue.float(summary["estimated_response_rate"]),
            "expected_incremental_responses": dg.MetadataValue.float(
                summary["expected_incremental_responses"]
            ),
            "expected_incremental_profit": dg.MetadataValue.float(
                summary["expected_incremental_profit"]
            ),
            "certified_gap": dg.MetadataValue.float(float(summary["gap"])),
            "upper_bound": dg.MetadataValue.float(float(summary["upper_bound"])),
            "treated": summary["treated"],
            "control": summary["control"],
            "explored": summary["explored"],
            "per_campaign": dg.MetadataValue.json(summary["per_campaign"]),
            "inactive_campaigns": dg.MetadataValue.json(summary["inactive_campaigns"]),
            "inputs": dg.MetadataValue.json(inputs),
            "model_versions": dg.MetadataValue.json(versions),
            **(
                {"experiment": dg.MetadataValue.json(summary["experiment"])}
                if "experiment" in summary
                else {}
            ),
        },
    )


def load_experiment(folder: Path, day: date) -> tuple[Experiment | None, dict, dict]:
    """The experiment active on ``day``, its arms' own score files, and what the run key
    knows of them (its file and the score files' content); refuses invalid files."""
    try:
        experiment = active_experiment(folder, day)
        if experiment is None:
            return None, {}, {}
        arm_scores = {
            arm.name: read_scores(arm.targeting.scores)
            for arm in experiment.arms
            if arm.targeting.scores is not None
        }
    except (CampaignValidationError, ScoreFileError) as error:
        raise dg.Failure(f"the experiment does not validate:\n{error}") from None
    inputs = {
        "experiment": f"{experiment.file}@{experiment.content_hash}",
        "arm_scores": {name: frame_fingerprint(frame) for name, frame in arm_scores.items()},
    }
    return experiment, arm_scores, inputs
