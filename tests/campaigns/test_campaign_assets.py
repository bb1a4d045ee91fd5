"""Campaign assets through real Dagster runs on a small synthetic bank.

The bank's source tables go through ingestion; ``customer_scores`` is written from the
world's ground truth (the oracle models), so targeting is tested without training.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from cx_pipelines import config, warehouse
from cx_pipelines.campaigns.exports import verify_export
from cx_pipelines.defs.campaigns import CAMPAIGN_ASSETS, CAMPAIGN_CHECKS
from cx_pipelines.defs.campaigns.assets import CampaignSettings
from cx_pipelines.defs.decisioning.assets import StrategyRepository
from cx_pipelines.defs.runs import materialize
from cx_pipelines.defs.warehouse_io import WarehouseIOManager
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TIGHT = """\
campaign_id: tight_card_web
offer: credit_card
treatment: credit_card_offer
channel: web
eligibility: {all: [{attribute: age, at_least: 18}]}
cost_per_contact: 0.05
margin_per_response: 400
volume_cap: 15
control_share: 0.2
start: 2026-09-01
end: 2027-06-30
"""
UPSTREAM = (
    "customer_scores",
    "customers",
    "accounts",
    "transactions",
    "offer_history",
    "customer_segments",
)
PERSONAL = {"email", "birth_year", "annual_income", "age", "name"}


@dataclass
class Bank:
    home: Path
    campaigns: Path

    @contextmanager
    def environment(self, monkeypatch: pytest.MonkeyPatch, day: str) -> Iterator[None]:
        monkeypatch.setenv("CX_HOME", str(self.home))
        monkeypatch.setenv("DAGSTER_HOME", str(self.home / "dagster"))
        monkeypatch.delenv("CX_SOURCE_URL", raising=False)
        monkeypatch.setenv("CX_DECISION_DATE", day)
        yield


def oracle_scores(home: Path) -> pd.DataFrame:
    truth = pd.read_parquet(home / "world" / "truth.parquet")
    scores = pd.DataFrame({"customer_id": truth["customer_id"]})
    for offer in OFFER_TYPES:
        for channel in OFFER_CHANNELS:
            treated = truth[f"p_treated__{offer}__{channel}"]
            scores[f"propensity__{offer}__{channel}"] = treated
            scores[f"uplift__{offer}__{channel}"] = (
                treated - truth[f"p_control__{offer}__{channel}"]
            )
    for column in ("attrition_risk", "probability_alive", "clv"):
        scores[column] = 0.5
    scores["propensity_model_version"] = "oracle/1"
    scores["uplift_model_version"] = "oracle/1"
    return scores


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Bank:
    from cx_pipelines.world import generate_world

    home = tmp_path_factory.mktemp("campaign_bank") / "cx"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("CX_SOURCE_URL", raising=False)
        generate_world(customers=400, seed=5, source_url=config.source_url())
        result = materialize(
            "key:customers or key:accounts or key:transactions or key:offer_history"
        )
        assert result.success
        warehouse.write_table("customer_scores", oracle_scores(home))
    campaigns = home.parent / "campaigns"
    shutil.copytree(ROOT / "strategies" / "campaigns", campaigns)
    (campaigns / "tight_card_web.yaml").write_text(TIGHT)
    return Bank(home=home, campaigns=campaigns)


def run(bank: Bank) -> dg.ExecuteInProcessResult:
    definitions = dg.Definitions(
        assets=[*CAMPAIGN_ASSETS, *(dg.AssetSpec(name) for name in UPSTREAM)],
        asset_checks=CAMPAIGN_CHECKS,
        resources={
            "campaign_settings": CampaignSettings(
                directory=str(bank.campaigns), decision_date=dg.EnvVar("CX_DECISION_DATE")
            ),
            "strategies": StrategyRepository(directory=str(ROOT / "strategies")),
            "io_manager": WarehouseIOManager(),
        },
    )
    config.ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        return definitions.resolve_implicit_global_asset_job_def().execute_in_process(
            instance=instance, raise_on_error=False
        )


def checks(result: dg.ExecuteInProcessResult) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def materialisation(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        data = event.step_materialization_data.materialization
        if data.asset_key.to_user_string() == asset:
            return {key: value.value for key, value in data.metadata.items()}
    raise AssertionError(f"{asset} was not materialised")


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_targets_and_exports_reconcile_and_reruns_are_identical(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bank.environment(monkeypatch, "2026-10-01"):
        result = run(bank)
        assert result.success
        assert checks(result) == {
            "campaigns_validate": True,
            "one_offer_per_customer_within_caps": True,
            "exports_reconcile_with_targets": True,
        }
        meta = materialisation(result, "campaign_targets")
        targets = warehouse.read_table("campaign_targets")
        exported = warehouse.read_table("campaign_exports")
    run_key = meta["run_key"]
    assert run_key.startswith("2026-10-01-") and set(targets["run_key"]) == {run_key}
    assert 0 <= meta["certified_gap"] < 1e-3
    assert 0 < meta["estimated_response_rate"] < 1
    assert meta["expected_incremental_profit"] > 0
    per_campaign = meta["per_campaign"]
    assert "summer_loan_email" not in per_campaign  # ended 2026-08-31
    assert per_campaign["tight_card_web"]["treated"] <= 15
    assert not targets["customer_id"].duplicated().any()
    assert (pd.to_datetime(targets["decided_at"]) == pd.Timestamp("2026-10-01")).all()
    assert json.loads(targets["model_versions"].iloc[0])["uplift_model_version"] == "oracle/1"
    assert sorted(exported["campaign_id"]) == sorted(per_campaign)
    for row in exported.itertuples():
        folder = Path(row.folder)
        assert folder == bank.home / "exports" / row.campaign_id / run_key
        assert verify_export(folder) == []
        decisions = pd.read_parquet(folder / "decisions.parquet")
        mine = targets[targets["campaign_id"] == row.campaign_id]
        assert len(decisions) == len(mine) == row.decisions
        assert set(decisions["contact_id"]) == set(mine["contact_id"])
        assert PERSONAL.isdisjoint(decisions.columns)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["created_from"]["decision_date"] == "2026-10-01"
        assert manifest["model_versions"]["uplift_model_version"] == "oracle/1"
    before = {row.campaign_id: digests(Path(row.folder)) for row in exported.itertuples()}

    with bank.environment(monkeypatch, "2026-10-01"):
        again = run(bank)
        assert again.success
        assert materialisation(again, "campaign_targets")["run_key"] == run_key
        exported = warehouse.read_table("campaign_exports")
    after = {row.campaign_id: digests(Path(row.folder)) for row in exported.itertuples()}
    assert after == before


def test_decision_date_from_the_environment_selects_active_campaigns(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bank.environment(monkeypatch, "2026-08-15"):
        result = run(bank)
        assert result.success
        meta = materialisation(result, "campaign_targets")
    assert meta["decision_date"] == "2026-08-15"
    assert sorted(meta["per_campaign"]) == ["summer_loan_email"]
    assert (bank.home / "exports" / "summer_loan_email" / meta["run_key"]).is_dir()


def test_an_invalid_campaign_blocks_targeting_and_keeps_the_exports(
    bank: Bank, monkeypatch: pytest.MonkeyPatch
) -> None:
    with bank.environment(monkeypatch, "2026-10-01"):
        assert run(bank).success
        exports_before = {
            str(p): p.read_bytes() for p in (bank.home / "exports").rglob("*") if p.is_file()
        }
        targets_before = warehouse.read_table("campaign_targets")
        broken = bank.campaigns / "zz_broken.yaml"
        broken.write_text(TIGHT.replace("tight_card_web", "broken").replace("web", "fax"))
        try:
            result = run(bank)
        finally:
            broken.unlink()
        assert not result.success
        assert checks(result)["campaigns_validate"] is False
        evaluation = next(
            e for e in result.get_asset_check_evaluations() if e.check_name == "campaigns_validate"
        )
        assert "zz_broken.yaml:4: unknown channel 'fax'" in evaluation.metadata["problems"].value
        pd.testing.assert_frame_equal(warehouse.read_table("campaign_targets"), targets_before)
    exports_after = {
        str(p): p.read_bytes() for p in (bank.home / "exports").rglob("*") if p.is_file()
    }
    assert exports_after == exports_before


def _service_log(
    folder: Path, customers: list[int], *, channel: str, per_customer: int, name: str
) -> None:
    """The real-time service's decision log: ``per_customer`` decisions presented to each."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for customer in customers:
        for k in range(per_customer):
            decided = pd.Timestamp("2026-09-30 12:00", tz="UTC") - pd.Timedelta(days=k)
            entry = {
                "decision_id": f"svc-{customer}-{k}",
                "customer_id": str(customer),
                "channel": channel,
                "interaction_type": "login",
                "treatment": "savings_offer",
                "offer_type": "savings",
                "rank": 1,
                "campaign_id": "realtime",
                "selection_probability": 1.0,
                "decided_at": decided.isoformat(),
                "strategy_hash": "service-hash",
                "model_versions": {},
                "known_customer": True,
                "treatments": [{"treatment": "savings_offer", "rank": 1}],
                "trace": {"segment": "any"},
            }
            lines.append(json.dumps(entry))
    (folder / name).write_text("\n".join(lines) + "\n")


def test_service_contacts_count_against_the_batch_contact_caps(
    bank: Bank, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Email cap 2 per 7 days: customers the service emailed twice get no batch email."""
    with bank.environment(monkeypatch, "2026-10-01"):
        monkeypatch.setenv("CX_DECISION_LOG_DIR", str(tmp_path / "no_service_yet"))
        assert run(bank).success
        before = warehouse.read_table("campaign_targets")
        emailed = sorted(set(before.loc[before["channel"] == "email", "customer_id"]))
        assert len(emailed) > 10
        twice, once = emailed[::2], emailed[1::2]
        log = tmp_path / "decision_log"  # one file per service process
        _service_log(log, twice, channel="email", per_customer=2, name="20260930T1-1-aa.jsonl")
        _service_log(log, once, channel="email", per_customer=1, name="20260930T1-2-bb.jsonl")
        monkeypatch.setenv("CX_DECISION_LOG_DIR", str(tmp_path / "decision_log"))
        result = run(bank)
        assert result.success
        meta = materialisation(result, "campaign_targets")
        after = warehouse.read_table("campaign_targets")
    assert meta["inputs"]["tables"]["service_contacts"] == 2 * len(twice) + len(once)
    assert meta["run_key"] != before["run_key"].iloc[0]
    email_now = set(after.loc[after["channel"] == "email", "customer_id"])
    assert not email_now & set(twice), "a customer at the email cap got a batch email"
    assert email_now & set(once), "one service email leaves room for one batch email"
    email_campaigns = sorted(set(before.loc[before["channel"] == "email", "campaign_id"]))
    for campaign_id in email_campaigns:
        blocked = meta["per_campaign"][campaign_id]["blocked_by_policy"]
        assert blocked.get("contact cap email: 2 per 7 days", 0) >= len(twice)


def test_the_whole_pipeline_targets_and_exports(materialised_world, monkeypatch) -> None:
    """In `materialize("*")` (the shared 600-customer world, trained models) the campaign
    checks pass and every export reconciles with campaign_targets."""
    for check in (
        ("campaign_catalog", "campaigns_validate"),
        ("campaign_targets", "one_offer_per_customer_within_caps"),
        ("campaign_exports", "exports_reconcile_with_targets"),
    ):
        assert materialised_world.check_passed[check], check
    with materialised_world.environment():
        targets = warehouse.read_table("campaign_targets")
        exported = warehouse.read_table("campaign_exports")
    assert len(exported) >= 5
    for row in exported.itertuples():
        assert verify_export(Path(row.folder)) == []
        assert row.decisions == int((targets["campaign_id"] == row.campaign_id).sum())
    # models without a champion leave scores null; such pairs are explored, never optimised
    unscored = targets["expected_incremental_profit"].isna()
    assert targets.loc[unscored, "exploration"].all()
