"""Test support for the decision service: a small warehouse, the assets that fill the
online store, and a real uvicorn server on a free loopback port."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import requests

from cx_pipelines import warehouse
from cx_pipelines.defs.decisioning.assets import StrategyRepository, strategy_catalog
from cx_pipelines.defs.decisioning.intelligence import (
    customer_intelligence_record,
    every_customer_has_a_record_per_channel,
)
from cx_pipelines.defs.decisioning.online import OnlineStoreResource, online_features
from cx_pipelines.defs.warehouse_io import WarehouseIOManager
from cx_pipelines.service.auth import hash_key
from cx_pipelines.source_schema import OFFER_CHANNELS, OFFER_TYPES

ROOT = Path(__file__).resolve().parents[2]
STRATEGY = ROOT / "strategies" / "next_best_action.yaml"
KEYS = {
    "decide": "test-key-decide-0123456789",
    "respond": "test-key-respond-0123456789",
    "admin": "test-key-admin-0123456789",
    "all": "test-key-all-0123456789",
}
SCOPES = {"decide": "decide", "respond": "respond", "admin": "admin", "all": "decide+respond+admin"}
VERSIONS = {"propensity": "cx_propensity/3", "uplift": "cx_uplift/2", "attrition": "cx_attrition/1"}


@contextmanager
def environment(home: Path) -> Iterator[None]:
    """This process pointed at ``home`` (warehouse, Dagster) while the block runs."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_HOME", str(home))
        patch.setenv("DAGSTER_HOME", str(home / "dagster"))
        patch.delenv("CX_SOURCE_URL", raising=False)
        patch.delenv("CX_ONLINE_STORE_URL", raising=False)
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)  # CX_HOME's registry, not a leftover
        yield


def keys_environment(rate: float | None = None) -> str:
    suffix = f":{rate}" if rate else ""
    return ";".join(f"{name}:{hash_key(KEYS[name])}:{SCOPES[name]}{suffix}" for name in KEYS)


def headers(name: str = "all") -> dict[str, str]:
    return {"X-API-Key": KEYS[name]}


def write_warehouse(customers: int = 60, *, seed: int = 3, versions: dict | None = None) -> None:
    """Customers, accounts, segments and champion scores in warehouse shape (CX_HOME set)."""
    random = np.random.default_rng(seed)
    ids = np.arange(1, customers + 1, dtype=np.int64)
    as_of = dt.date(2026, 9, 30)
    warehouse.write_table(
        "customers",
        pd.DataFrame(
            {
                "customer_id": ids,
                "customer_type": random.choice(
                    ["mass_market", "affluent", "student", "young_professional", "small_business"],
                    customers,
                ),
                "birth_year": random.integers(1940, 2010, customers),
                "annual_income": random.integers(3_000, 220_000, customers).astype(float),
                "joined_on": [
                    as_of - dt.timedelta(days=int(d)) for d in random.integers(30, 6000, customers)
                ],
                "email": [f"c{i}@example.org" for i in ids],
            }
        ),
    )
    rows = []
    for customer in ids:
        for number, product in enumerate(random.choice(["credit_card", "savings", "mortgage"], 2)):
            rows.append(
                (
                    int(customer) * 10 + number,
                    int(customer),
                    str(product),
                    "open",
                    float(random.integers(0, 9000)),
                    5000.0,
                )
            )
    warehouse.write_table(
        "accounts",
        pd.DataFrame(
            rows,
            columns=[
                "account_id",
                "customer_id",
                "product_type",
                "status",
                "balance",
                "credit_limit",
            ],
        ),
    )
    warehouse.write_table(
        "customer_segments",
        pd.DataFrame(
            {
                "customer_id": ids,
                "segment": random.choice(["active", "lapsing", "dormant", None], customers),
            }
        ),
    )
    scores: dict[str, object] = {"customer_id": ids}
    for kind in ("propensity", "uplift"):
        for offer in OFFER_TYPES:
            for channel in OFFER_CHANNELS:
                scores[f"{kind}__{offer}__{channel}"] = random.uniform(0, 0.3, customers).round(6)
    scores["attrition_risk"] = random.uniform(0, 0.5, customers).round(6)
    for name, version in (versions or VERSIONS).items():
        scores[f"{name}_model_version"] = version
    warehouse.write_table("customer_scores", pd.DataFrame(scores))


def materialise(folder: Path, store_url: str = "", selection=None) -> dg.ExecuteInProcessResult:
    """strategy_catalog, online_features and customer_intelligence_record in one run."""
    result = dg.materialize(
        selection
        or [
            strategy_catalog,
            online_features,
            customer_intelligence_record,
            every_customer_has_a_record_per_channel,
        ],
        resources={
            "io_manager": WarehouseIOManager(),
            "strategies": StrategyRepository(directory=str(folder)),
            "online_store": OnlineStoreResource(url=store_url),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return result


def strategy_folder(home: Path) -> Path:
    folder = home / "strategies"
    folder.mkdir(exist_ok=True)
    shutil.copy(STRATEGY, folder / STRATEGY.name)
    return folder


def serve_command(port: int, workers: int = 1) -> list[str]:
    """``cx serve`` on ``port`` with ``workers`` workers, as a subprocess runs it."""
    return [sys.executable, "-m", "cx_pipelines.cli", "serve", "--port", str(port),
            "--workers", str(workers)]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    environment: dict[str, str] = field(repr=False)
    output: Path = field(repr=False)

    def get(self, path: str, **options) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **options)

    def post(self, path: str, body, key: str | None = "all", **options) -> requests.Response:
        return requests.post(
            self.url + path, json=body, headers=headers(key) if key else {}, timeout=10, **options
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def kill(self) -> None:
        self.process.kill()  # SIGKILL
        self.process.wait()

    def log(self) -> str:
        return self.output.read_text(errors="replace")


def start_server(
    home: Path,
    *,
    strategy: Path,
    store_url: str = "",
    workers: int = 1,
    extra: dict[str, str] | None = None,
) -> Server:
    """``cx serve`` in a subprocess on a free loopback port; returns once /health answers."""
    port = free_port()
    inherited = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}  # home's
    environment = {
        **inherited,
        "CX_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
        "CX_API_KEYS": keys_environment(),
        "CX_SERVICE_STRATEGY": str(strategy),
        "CX_SERVICE_RELOAD_SECONDS": "0.2",
        "CX_SERVICE_MLFLOW_SECONDS": "0",
        "CX_SERVICE_LOG_LEVEL": "WARNING",
        **({"CX_ONLINE_STORE_URL": store_url} if store_url else {}),
        **(extra or {}),
    }
    output = home / f"server-{port}.log"
    process = subprocess.Popen(
        serve_command(port, workers),
        env=environment,
        stdout=output.open("w"),
        stderr=subprocess.STDOUT,
    )
    server = Server(f"http://127.0.0.1:{port}", process, environment, output)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{server.log()}")
        try:
            if server.get("/ready").status_code == 200:
                return server
        except (requests.ConnectionError, requests.Timeout):  # not listening, or starting
            pass
        time.sleep(0.1)
    last = server.get("/ready").text if process.poll() is None else "(exited)"
    server.stop()
    raise RuntimeError(f"server did not become ready ({last}):\n{server.log()}")


def warehouse_frame(home: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(home / "warehouse" / f"{name}.parquet")
