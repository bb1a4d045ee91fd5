"""What the service decides with, and how it is swapped while requests run.

``Deployment`` is immutable: the active strategy (one that loaded, type-checked and passed
its golden cases on both evaluators, remembered by content hash) and the online store's
current snapshot metadata (its generation and the model versions behind its scores). A
request takes the current deployment once and uses it to the end; the watcher thread
builds a new one when the strategy file or the store's snapshot changes and replaces the
reference in one assignment, so no request ever sees half of a swap or is dropped.

When a component cannot be reached (the store, MLflow) the service keeps its last good
deployment and ``health`` says what is unavailable since when; ``/ready`` reports it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cx_pipelines.engine import Strategy, load_strategy, run_golden_cases
from cx_pipelines.engine.language.errors import EngineError
from cx_pipelines.online_store import OnlineStore, StoreUnavailable
from cx_pipelines.online_store.common import decode_record
from cx_pipelines.service.settings import ServiceSettings

LOGGER = logging.getLogger("cx_pipelines.service")
CHAMPION_MODELS = ("cx_propensity", "cx_uplift", "cx_attrition")


@dataclass(frozen=True)
class Deployment:
    strategy: Strategy
    file_digest: str
    snapshot: dict[str, Any] | None  # the store's metadata (generation, model_versions, ...)
    deployed_at: float

    @property
    def model_versions(self) -> dict[str, str]:
        return dict((self.snapshot or {}).get("model_versions") or {})

    @property
    def generation(self) -> str | None:
        return (self.snapshot or {}).get("generation")


@dataclass
class Component:
    ok: bool = True
    detail: str = ""
    since: float = field(default_factory=time.time)

    def report(self, ok: bool, detail: str = "") -> None:
        if ok != self.ok:
            self.since = time.time()
            LOGGER.warning("component %s: %s", "recovered" if ok else "unavailable", detail)
        self.ok, self.detail = ok, detail


class StrategyRejected(RuntimeError):
    """A strategy file failed validation or its golden cases; it is not deployed."""


def validated_strategy(path: Path) -> Strategy:
    """Load ``path``; raise :class:`StrategyRejected` unless it loads and its golden cases pass."""
    try:
        strategy = load_strategy(path)
    except (EngineError, OSError) as error:
        raise StrategyRejected(f"{path.name} does not load: {error}") from error
    failures = run_golden_cases(strategy)
    if failures:
        raise StrategyRejected(
            f"{path.name} {strategy.content_hash}: {len(failures)} golden case failures, "
            f"first: {failures[0]}"
        )
    if not strategy.golden_cases:
        raise StrategyRejected(f"{path.name} has no golden cases; refusing to deploy it untested")
    return strategy


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ServiceState:
    """The current deployment, the store, the component health and the watcher thread."""

    def __init__(self, settings: ServiceSettings, store: OnlineStore) -> None:
        self.settings = settings
        self.store = store
        self.components = {"strategy": Component(), "store": Component(), "mlflow": Component()}
        self.rejected: dict[str, str] | None = None
        self.champions: dict[str, str | None] = {}
        self._snapshots: dict[str, dict[str, Any]] = {}
        self._cache: OrderedDict[str, str | bytes] = OrderedDict()
        self._cache_size = settings.cache_size
        self._cache_lock = threading.Lock()
        # decoded records of known customers by id, with the snapshot they came from: a
        # hit for the deployed snapshot skips the store read and the JSON decoding (a
        # snapshot is immutable, so the record is the one the store holds for it)
        self._records: dict[str, tuple[str, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._last_mlflow = 0.0
        strategy = validated_strategy(settings.strategy_path)
        self.deployment = Deployment(
            strategy, _digest(settings.strategy_path), self._read_snapshot(), time.time()
        )
        LOGGER.info("deployed %s %s", strategy.name, strategy.content_hash)
        self._thread = threading.Thread(target=self._watch, name="deployment-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _read_snapshot(self) -> dict[str, Any] | None:
        try:
            snapshot = self.store.meta()
        except StoreUnavailable as error:
            self.components["store"].report(False, str(error))
            return getattr(getattr(self, "deployment", None), "snapshot", None)
        self.components["store"].report(True)
        if snapshot is not None:
            self._snapshots[snapshot["generation"]] = snapshot
        return snapshot

    def snapshot_of(self, generation: str | None) -> dict[str, Any] | None:
        """Metadata of the snapshot a record came from (reads the store once if unseen)."""
        if generation is None:
            return None
        if generation not in self._snapshots:
            self.refresh()
        return self._snapshots.get(generation)

    def refresh(self) -> dict[str, str]:
        """Check the strategy file and the store now; swap what changed. Returns what happened."""
        with self._lock:
            changes: dict[str, str] = {}
            current = self.deployment
            strategy, digest = current.strategy, current.file_digest
            try:
                new_digest = _digest(self.settings.strategy_path)
            except OSError as error:
                self.components["strategy"].report(False, f"strategy file unreadable: {error}")
                new_digest = digest
            if new_digest != digest and new_digest != (self.rejected or {}).get("digest"):
                try:
                    strategy = validated_strategy(self.settings.strategy_path)
                    digest = new_digest
                    self.rejected = None
                    self.components["strategy"].report(True)
                    changes["strategy"] = strategy.content_hash
                    LOGGER.info("deployed %s %s", strategy.name, strategy.content_hash)
                except StrategyRejected as error:
                    self.rejected = {"digest": new_digest, "reason": str(error)}
                    changes["strategy_rejected"] = str(error)
                    LOGGER.warning("strategy not deployed: %s", error)
            snapshot = self._read_snapshot()
            if (snapshot or {}).get("generation") != current.generation:
                changes["snapshot"] = str((snapshot or {}).get("generation"))
            if changes.keys() & {"strategy", "snapshot"}:
                if "snapshot" in changes:
                    with self._cache_lock:
                        self._cache.clear()
                self.deployment = Deployment(strategy, digest, snapshot, time.time())
            return changes

    def _check_champions(self) -> None:
        from cx_pipelines.ml import registry

        try:
            self.champions = {
                name: registry.version_for_alias(name, registry.CHAMPION)
                for name in CHAMPION_MODELS
            }
        except Exception as error:  # noqa: BLE001 - MLflow raises many kinds; report, keep state
            self.components["mlflow"].report(False, f"{type(error).__name__}: {error}"[:300])
            return
        self.components["mlflow"].report(True)

    def stale_models(self) -> dict[str, str]:
        """Models whose champion is not the version behind the served scores."""
        served = self.deployment.model_versions
        return {
            name: f"scores from version {served.get(name)}, champion is {version}"
            for name, version in self.champions.items()
            if version is not None and served.get(name) not in (None, version)
        }

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.reload_seconds):
            try:
                self.refresh()
                due = self.settings.mlflow_seconds
                if due and time.monotonic() - self._last_mlflow >= due:
                    self._last_mlflow = time.monotonic()
                    self._check_champions()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one failure
                LOGGER.exception("deployment watch failed; keeping the current deployment")

    def customer(self, customer_id: str) -> tuple[dict[str, Any] | None, str | None]:
        """(record, None), (None, None) for an unknown customer, or the cached record and
        ``store_unavailable`` when the store cannot be read (None if never read)."""
        return self.customers([customer_id])[customer_id]

    def customers(
        self, customer_ids: list[str]
    ) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
        """:meth:`customer` for many ids in one store round trip (none when every record
        of the deployed snapshot is in memory already)."""
        generation = self.deployment.generation
        records = self._records
        hits: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for customer_id in customer_ids:
            entry = records.get(customer_id)
            if entry is not None and entry[0] == generation:
                hits[customer_id] = entry[1]
            else:
                missing.append(customer_id)
        if not missing:
            return {c: (hits[c], None) for c in customer_ids}
        try:
            texts = self.store.read_many(missing)
        except StoreUnavailable as error:
            self.components["store"].report(False, str(error))
            with self._cache_lock:
                cached = {c: self._cache.get(c) for c in missing}
            found = {c: (decode_record(text), "store_unavailable") for c, text in cached.items()}
            return {c: found.get(c) or (hits[c], "store_unavailable") for c in customer_ids}
        with self._cache_lock:
            for customer_id, text in texts.items():
                self._cache[customer_id] = text
                self._cache.move_to_end(customer_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        decoded = {c: decode_record(text) for c, text in texts.items()}
        for customer_id, record in decoded.items():
            if record["generation"] == generation:
                records[customer_id] = (generation, record)
        while len(records) > self._cache_size:
            records.pop(next(iter(records)), None)
        return {c: (hits[c], None) if c in hits else (decoded.get(c), None) for c in customer_ids}
