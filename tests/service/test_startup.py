"""What the service refuses to start with, and several worker processes."""

from __future__ import annotations

import subprocess
import sys

import pytest
import support

from cx_pipelines.service.auth import ApiKeyError, hash_key, load_keys
from cx_pipelines.service.decision_log import read_decision_log


def _serve(prepared, **environment) -> subprocess.CompletedProcess:
    env = {
        **support.os.environ,
        "CX_HOME": str(prepared.home),
        "CX_SERVICE_STRATEGY": str(prepared.strategy),
        "CX_SERVICE_MLFLOW_SECONDS": "0",
        **environment,
    }
    port = str(support.free_port())
    return subprocess.run(
        [sys.executable, "-m", "cx_pipelines.cli", "serve", "--port", port],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_no_key_configured_no_service(prepared):
    run = _serve(prepared, CX_API_KEYS="", CX_API_KEYS_FILE="")
    assert run.returncode != 0 and "no API keys configured" in run.stdout + run.stderr


def test_a_strategy_failing_its_golden_cases_is_never_served(prepared, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        prepared.strategy.read_text().replace(
            "web: [wealth_review, mortgage_consultation]", "web: [service_message]", 1
        )
    )
    run = _serve(prepared, CX_API_KEYS=support.keys_environment(), CX_SERVICE_STRATEGY=str(broken))
    assert run.returncode != 0 and "golden case" in run.stdout + run.stderr


def test_key_files_are_checked(tmp_path):
    good = tmp_path / "keys.yaml"
    good.write_text(f"- {{name: web, sha256: {hash_key('k1')}, scopes: [decide, respond]}}\n")
    keys = load_keys(str(good), f"ops:{hash_key('k2')}:admin")
    assert keys[hash_key("k1")].scopes == {"decide", "respond"}
    assert keys[hash_key("k2")].name == "ops"
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"- {{name: web, sha256: {hash_key('k1')}, scopes: [everything]}}\n")
    with pytest.raises(ApiKeyError, match="unknown scope 'everything'"):
        load_keys(str(bad), "")
    with pytest.raises(ApiKeyError, match="inside the repository"):
        load_keys(str(support.ROOT / "keys.yaml"), "")
    with pytest.raises(ApiKeyError, match="64 hex digits"):
        load_keys("", "web:abc:decide")


@pytest.mark.slow
def test_two_workers_share_the_port_and_each_logs_durably(prepared):
    server = support.start_server(prepared.home, strategy=prepared.strategy, workers=2)
    try:
        ids = [
            server.post("/v1/decisions", {"customer_id": str(i), "channel": "web"}).json()[
                "decision_id"
            ]
            for i in range(1, 41)
        ]
    finally:
        server.stop()
    logged = {e["decision_id"] for e in read_decision_log(prepared.home / "decision_log")}
    assert set(ids) <= logged
