"""Promotion gates: a challenger becomes champion only when it beats the champion on the same
holdout by the spec's metric (rule ``point``), or, with the spec's rule ``not_credibly_worse``,
unless a paired bootstrap of that holdout says it is worse. Both are judged on the holdout rows
the champion was not fitted on (a champion refitted on its own holdout has seen those rows).
Blocking, so scores are not rebuilt from a model that lost."""

import dagster as dg

from cx_pipelines.defs.training.models import SPEC_OF_ASSET
from cx_pipelines.defs.training.resources import MlflowResource
from cx_pipelines.ml import registry
from cx_pipelines.ml.specs import load_spec


def promotion_decision(
    asset_name: str, version: str, *, tracking_uri: str
) -> registry.PromotionDecision:
    """Decide from the version tags the training asset wrote (both metrics, same holdout)."""
    spec = load_spec(SPEC_OF_ASSET[asset_name])
    name = spec.registered_name
    tags = registry.client(tracking_uri).get_model_version(name, version).tags
    challenger_value = float(tags["metric_value"])
    champion_version = tags.get("champion_version")
    current = registry.version_for_alias(name, registry.CHAMPION, tracking_uri=tracking_uri)
    if current == version:
        return registry.PromotionDecision(
            promote=False,
            reason=f"version {version} is already champion",
            metric=spec.metric,
            challenger_version=version,
            challenger_value=challenger_value,
            champion_version=version,
            champion_value=challenger_value,
        )
    if champion_version is not None and "champion_metric_value" not in tags:
        return registry.PromotionDecision(
            promote=True,
            reason=f"champion v{champion_version} cannot score the current holdout "
            f"({tags.get('champion_error', 'no metric recorded')}); "
            f"challenger v{version} replaces it",
            metric=spec.metric,
            challenger_version=version,
            challenger_value=challenger_value,
            champion_version=champion_version,
            champion_value=None,
        )
    # Both figures on the same rows: the holdout rows the champion was not fitted on
    # (challenger.gate_tags), when the training asset judged row by row.
    if champion_version is not None and "gate_challenger_value" in tags:
        challenger_value = float(tags["gate_challenger_value"])
    upper = tags.get("gate_difference_upper")
    return registry.decide_promotion(
        spec,
        challenger_version=version,
        challenger_value=challenger_value,
        champion_version=champion_version,
        champion_value=float(tags["champion_metric_value"]) if champion_version else None,
        difference_upper=float(upper) if upper is not None and champion_version else None,
    )


def no_challenger(
    asset_name: str, metadata: dict[str, dg.MetadataValue], *, tracking_uri: str
) -> dg.AssetCheckResult:
    """A run that trained nothing (too little data): a warning, which does not block scoring."""
    model_name = load_spec(SPEC_OF_ASSET[asset_name]).registered_name
    champion = registry.version_for_alias(model_name, registry.CHAMPION, tracking_uri=tracking_uri)
    entry = metadata.get("not_trained_reason")
    reason = str(entry.value) if entry is not None else f"{asset_name} registered no version"
    stays = (
        f"champion v{champion} stays registered, but customer_scores does not use it while "
        "the data cannot train a model"
        if champion
        else "there is no champion yet"
    )
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"no challenger this run ({stays}): {reason}",
        metadata={"reason": reason, "champion_now": champion or "none"},
    )


def build_promotion_check(asset_name: str) -> dg.AssetChecksDefinition:
    """``<asset>_challenger_beats_champion``: promote the new version or keep the champion."""

    @dg.asset_check(
        asset=asset_name,
        name=f"{asset_name}_challenger_beats_champion",
        blocking=True,
        description=(
            "The newly trained version beats the champion on the same holdout by the spec's "
            "metric, or with the rule not_credibly_worse is not credibly worse by a paired "
            "bootstrap (first version: no champion yet); it is then promoted to champion. A "
            "run with too little data to train warns (no challenger) without blocking. A "
            "challenger that loses fails the check and the champion stays; one that merely "
            "reproduces the champion's figure (a retrain on unchanged data) is not promoted "
            "and does not fail."
        ),
    )
    def _check(
        context: dg.AssetCheckExecutionContext, mlflow: MlflowResource
    ) -> dg.AssetCheckResult:
        event = context.instance.get_latest_materialization_event(dg.AssetKey(asset_name))
        if event is None or event.asset_materialization is None:
            return dg.AssetCheckResult(
                passed=False, description=f"{asset_name} has not been materialised"
            )
        metadata = event.asset_materialization.metadata
        uri = mlflow.configure()
        if "model_version" not in metadata:
            return no_challenger(asset_name, metadata, tracking_uri=uri)
        version = str(metadata["model_version"].value)
        decision = promotion_decision(asset_name, version, tracking_uri=uri)
        already = decision.champion_version == version and not decision.promote
        # A retrain on unchanged data reproduces the champion's figure exactly: nothing to
        # promote, and nothing wrong either, so it must not block rescoring.
        identical = decision.champion_value == decision.challenger_value
        spec_name = SPEC_OF_ASSET[asset_name]
        model_name = load_spec(spec_name).registered_name
        if decision.promote:
            registry.promote(model_name, version, tracking_uri=uri)
        registry.set_version_tags(
            model_name,
            version,
            {
                "promotion": "promoted" if decision.promote else "rejected",
                "promotion_reason": decision.reason[:500],
            },
            tracking_uri=uri,
        )
        context.log.info(f"{model_name}: {decision.reason}")
        champion = registry.version_for_alias(model_name, registry.CHAMPION, tracking_uri=uri)
        return dg.AssetCheckResult(
            passed=decision.promote or already or identical,
            description=decision.reason,
            metadata={
                "reason": decision.reason,
                "metric": decision.metric,
                "challenger_version": version,
                "challenger_value": decision.challenger_value,
                "champion_before": decision.champion_version or "none",
                "champion_value_before": decision.champion_value
                if decision.champion_value is not None
                else "none",
                "champion_now": champion or "none",
            },
        )

    return _check


PROMOTION_CHECKS = [build_promotion_check(name) for name in SPEC_OF_ASSET]
