"""``campaign_exports``: the targeting lists written for the action-taking systems."""

import json

import dagster as dg
import pandas as pd

from cx_pipelines.campaigns.exports import sweep_stale_temporaries, write_export
from cx_pipelines.defs.campaigns.assets import GROUP, CampaignSettings


def targets_metadata(context: dg.AssetExecutionContext) -> dict[str, object]:
    """Metadata of the latest ``campaign_targets`` materialisation (run key, inputs, counts)."""
    event = context.instance.get_latest_materialization_event(dg.AssetKey("campaign_targets"))
    if event is None or event.asset_materialization is None:
        raise dg.Failure("campaign_targets has no materialisation to export")
    return {key: entry.value for key, entry in event.asset_materialization.metadata.items()}


@dg.asset(group_name=GROUP, kinds={"parquet", "csv"})
def campaign_exports(
    context: dg.AssetExecutionContext,
    campaign_settings: CampaignSettings,
    campaign_targets: pd.DataFrame,
) -> dg.Output[pd.DataFrame]:
    """Each active campaign's list written atomically to exports/, with a checksummed manifest."""
    metadata = targets_metadata(context)
    run_key = str(metadata["run_key"])
    if len(campaign_targets) and set(campaign_targets["run_key"]) != {run_key}:
        raise dg.Failure(
            f"campaign_targets rows carry run keys {sorted(set(campaign_targets['run_key']))}, "
            f"its latest materialisation says {run_key}: re-materialise campaign_targets"
        )
    root = campaign_settings.exports_root()
    inputs = metadata["inputs"]
    rows = []
    for campaign_id in sorted(metadata["per_campaign"]):
        for path in sweep_stale_temporaries(root / campaign_id):
            context.log.warning(f"removed {path.name}, left in {path.parent} by a killed writer")
        decisions = campaign_targets[campaign_targets["campaign_id"] == campaign_id]
        manifest = {
            "decision_date": metadata["decision_date"],
            "strategy_hash": metadata["strategy_hash"],
            "model_versions": metadata.get("model_versions", inputs["model_versions"]),
            "created_from": inputs,
        }
        if "experiment" in metadata:  # the arms' sizes and economics, for the profit test
            manifest["experiment"] = metadata["experiment"]
        folder = write_export(
            decisions, root=root, campaign_id=campaign_id, run_key=run_key, manifest=manifest
        )
        files = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["files"]
        rows.append(
            {
                "campaign_id": campaign_id,
                "run_key": run_key,
                "folder": str(folder),
                "contacts": int(files["contacts.csv"]["rows"]),
                "decisions": int(files["decisions.parquet"]["rows"]),
                "decisions_sha256": files["decisions.parquet"]["sha256"],
                "contacts_sha256": files["contacts.csv"]["sha256"],
            }
        )
    exports = pd.DataFrame(
        rows,
        columns=[
            "campaign_id",
            "run_key",
            "folder",
            "contacts",
            "decisions",
            "decisions_sha256",
            "contacts_sha256",
        ],
    )
    context.log.info(f"exported {len(exports)} campaigns of run {run_key} to {root}")
    return dg.Output(
        exports,
        metadata={
            "run_key": run_key,
            "root": dg.MetadataValue.path(str(root)),
            "contacts": int(exports["contacts"].sum()) if len(exports) else 0,
            "decisions": int(exports["decisions"].sum()) if len(exports) else 0,
        },
    )
