"""The decision service's settings, read from the environment (so every worker process of
``cx serve --workers N`` reads the same)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cx_pipelines import config
from cx_pipelines.service.decision_log import SYNC_MODES


class SettingsError(ValueError):
    """A service setting is missing or malformed (names the variable)."""


def _number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as error:
        raise SettingsError(f"{name}={text!r} is not a number") from error
    if value <= 0:
        raise SettingsError(f"{name}={text!r} must be positive")
    return value


def _default_strategy() -> Path:
    folder = os.environ.get("CX_STRATEGIES_DIR")
    if folder:
        return Path(folder) / "next_best_action.yaml"
    local = Path("strategies") / "next_best_action.yaml"
    if local.exists():
        return local.resolve()
    return Path(__file__).resolve().parents[2] / "strategies" / "next_best_action.yaml"


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service is configured with (environment variable in brackets)."""

    strategy_path: Path  # CX_SERVICE_STRATEGY: the strategy file the service deploys
    store_url: str  # CX_ONLINE_STORE_URL
    decision_log_dir: Path  # CX_DECISION_LOG_DIR, default $CX_HOME/decision_log
    inbox_dir: Path  # where responses go for the feedback loop: $CX_HOME/inbox
    api_keys_file: str  # CX_API_KEYS_FILE (JSON or YAML, outside the repository)
    api_keys_text: str  # CX_API_KEYS ("name:sha256:scope+scope[:rate]" separated by ;)
    event: str  # CX_SERVICE_EVENT: the strategy event a decision runs
    max_body_bytes: int  # CX_SERVICE_MAX_BODY_BYTES
    max_batch: int  # CX_SERVICE_MAX_BATCH
    reload_seconds: float  # CX_SERVICE_RELOAD_SECONDS: strategy / store checks
    mlflow_seconds: float  # CX_SERVICE_MLFLOW_SECONDS: champion alias checks (0: off)
    default_rate: float  # CX_SERVICE_RATE: requests per second per key unless the key says
    cache_size: int  # CX_SERVICE_CACHE_SIZE: records kept to answer through a store outage
    log_sync: str = "write"  # CX_DECISION_LOG_SYNC: "write" or "fsync" (see decision_log)
    log_fsync_ms: float = 20.0  # CX_DECISION_LOG_FSYNC_MS: fsync lag in "write" mode
    contact_flush_ms: float = 10.0  # CX_SERVICE_CONTACT_FLUSH_MS: contacts gathered per write
    contact_max_pending: int = 100_000  # CX_SERVICE_CONTACT_MAX_PENDING: unwritten, in memory
    gc_young: int = 50_000  # CX_SERVICE_GC_YOUNG: young-generation threshold (collector.py)
    gc_older: int = 10  # CX_SERVICE_GC_OLDER: young collections per middle one
    switch_interval_ms: float | None = None  # CX_SERVICE_SWITCH_INTERVAL_MS (Python's: 5)

    @classmethod
    def from_environment(cls) -> ServiceSettings:
        home = config.cx_home()
        mlflow_text = os.environ.get("CX_SERVICE_MLFLOW_SECONDS", "10")
        return cls(
            strategy_path=Path(os.environ.get("CX_SERVICE_STRATEGY") or _default_strategy()),
            store_url=os.environ.get("CX_ONLINE_STORE_URL")
            or f"sqlite:///{home / 'online_store.db'}",
            decision_log_dir=Path(os.environ.get("CX_DECISION_LOG_DIR") or home / "decision_log"),
            inbox_dir=home / "inbox",
            api_keys_file=os.environ.get("CX_API_KEYS_FILE", ""),
            api_keys_text=os.environ.get("CX_API_KEYS", ""),
            event=os.environ.get("CX_SERVICE_EVENT", "customer_interaction"),
            max_body_bytes=int(_number("CX_SERVICE_MAX_BODY_BYTES", 1_048_576)),
            max_batch=int(_number("CX_SERVICE_MAX_BATCH", 1000)),
            reload_seconds=_number("CX_SERVICE_RELOAD_SECONDS", 1.0),
            mlflow_seconds=0.0 if mlflow_text == "0" else _number("CX_SERVICE_MLFLOW_SECONDS", 10),
            default_rate=_number("CX_SERVICE_RATE", 10_000),
            cache_size=int(_number("CX_SERVICE_CACHE_SIZE", 10_000)),
            log_sync=_sync_mode(),
            log_fsync_ms=_number("CX_DECISION_LOG_FSYNC_MS", 20.0),
            contact_flush_ms=_number("CX_SERVICE_CONTACT_FLUSH_MS", 10.0),
            contact_max_pending=int(_number("CX_SERVICE_CONTACT_MAX_PENDING", 100_000)),
            gc_young=int(_number("CX_SERVICE_GC_YOUNG", 50_000)),
            gc_older=int(_number("CX_SERVICE_GC_OLDER", 10)),
            switch_interval_ms=_number("CX_SERVICE_SWITCH_INTERVAL_MS", 0) or None,
        )


def _sync_mode() -> str:
    mode = os.environ.get("CX_DECISION_LOG_SYNC") or "write"
    if mode not in SYNC_MODES:
        raise SettingsError(f"CX_DECISION_LOG_SYNC={mode!r} is not one of {', '.join(SYNC_MODES)}")
    return mode
