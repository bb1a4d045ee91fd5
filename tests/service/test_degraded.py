"""When the online store or MLflow is briefly unavailable the service keeps answering with
its last good state, and /ready says what is missing."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import support
from conftest import prepare


def _redis(port: int, folder) -> subprocess.Popen:
    process = subprocess.Popen(
        [
            "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--dir",
            str(folder),
            "--appendonly",
            "yes",
            "--save",
            "",
        ],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if (
            subprocess.run(
                ["redis-cli", "-p", str(port), "ping"], capture_output=True
            ).stdout.strip()
            == b"PONG"
        ):
            return process
        time.sleep(0.05)
    process.kill()
    raise RuntimeError("redis-server did not start")


def _wait_ready(server, status: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = server.get("/ready").json()
        if body["status"] == status:
            return body
        time.sleep(0.1)
    raise AssertionError(f"/ready never said {status}: {body}")


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("redis-server") is None, reason="redis-server is not installed (.ci/redis.sh)"
)
def test_a_store_outage_is_survived_and_reported(tmp_path):
    port = support.free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    redis_server = _redis(port, folder)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        prepared = prepare(tmp_path / "cx", store_url=url, customers=10)
        server = support.start_server(prepared.home, strategy=prepared.strategy, store_url=url)
        try:
            before = server.post("/v1/decisions", {"customer_id": "4", "channel": "web"}).json()
            redis_server.kill()
            redis_server.wait()
            during = server.post("/v1/decisions", {"customer_id": "4", "channel": "web"})
            never_seen = server.post("/v1/decisions", {"customer_id": "5", "channel": "web"}).json()
            degraded = _wait_ready(server, "degraded")
            redis_server = _redis(port, folder)
            recovered = _wait_ready(server, "ready")
            after = server.post("/v1/decisions", {"customer_id": "4", "channel": "web"}).json()
        finally:
            server.stop()
    finally:
        redis_server.kill()
        redis_server.wait()
    assert during.status_code == 200
    assert during.json()["reason"] == "store_unavailable" and during.json()["known_customer"]
    assert during.json()["treatments"] == before["treatments"]  # the last good record
    assert (
        never_seen["reason"] == "store_unavailable"
        and never_seen["treatment"] == "general_information"
    )
    assert "store" in degraded["unavailable"] and degraded["ready"] is True
    assert recovered["unavailable"] == {} and after["reason"] is None


def test_mlflow_unavailable_is_reported_while_decisions_go_on(prepared):
    closed = support.free_port()
    server = support.start_server(
        prepared.home,
        strategy=prepared.strategy,
        extra={
            "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed}",
            "CX_SERVICE_MLFLOW_SECONDS": "0.3",
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "1",
        },
    )
    try:
        degraded = _wait_ready(server, "degraded", timeout=30)
        answer = server.post("/v1/decisions", {"customer_id": "2", "channel": "web"})
    finally:
        server.stop()
    assert "mlflow" in degraded["unavailable"] and degraded["ready"] is True
    assert answer.status_code == 200 and answer.json()["reason"] is None


@pytest.mark.slow
def test_ready_names_models_whose_champion_moved_past_the_served_scores(prepared):
    from mlflow import MlflowClient

    from cx_pipelines.ml import registry

    with support.environment(prepared.home):
        uri = registry.configure()
        client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        client.create_registered_model("cx_propensity")
        for _ in range(4):
            client.create_model_version("cx_propensity", source=str(prepared.home / "none"))
        client.set_registered_model_alias("cx_propensity", "champion", "4")
    server = support.start_server(
        prepared.home, strategy=prepared.strategy, extra={"CX_SERVICE_MLFLOW_SECONDS": "0.3"}
    )
    try:
        ready = _wait_ready(server, "degraded", timeout=60)
    finally:
        server.stop()
    assert ready["champions"]["cx_propensity"] == "4"
    assert ready["stale_models"] == {"cx_propensity": "scores from version 3, champion is 4"}
    assert ready["unavailable"] == {}
