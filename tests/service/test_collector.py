"""While the service runs, startup's objects are frozen, the young generation is
collected every ``young`` net allocations and the middle one every ``older`` young
collections; the previous settings come back when it stops."""

from __future__ import annotations

import gc
import sys

import pytest

from cx_pipelines.service import collector
from cx_pipelines.service.settings import ServiceSettings, SettingsError


def test_the_collector_is_tuned_while_the_service_runs_and_restored_after():
    before = gc.get_threshold()
    startup = [{"kept": n} for n in range(1_000)]
    with collector.tuned():
        assert gc.get_threshold() == (
            collector.YOUNG_THRESHOLD,
            collector.OLDER_THRESHOLD,
            before[2],
        )
        assert gc.get_freeze_count() >= len(startup)
        cycle: list = []
        cycle.append(cycle)  # cycles are still collected
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_young_collection_visits_at_most_the_young_threshold():
    """The pause of a young collection is bounded by the threshold: the objects that
    survive piling up (a record cache filling) are collected in steps of ``young``."""
    sizes: list[int] = []

    def watch(phase: str, info: dict) -> None:
        if phase == "start" and info["generation"] == 0:
            sizes.append(gc.get_count()[0])

    with collector.tuned(young=2_000, older=100):
        gc.callbacks.append(watch)
        try:
            kept = [[n] for n in range(20_000)]  # survivors, as cached records are
        finally:
            gc.callbacks.remove(watch)
    assert len(kept) == 20_000
    assert len(sizes) >= 5
    assert max(sizes) <= 2_001 + 10  # what was counted when each collection began


def test_the_switch_interval_is_set_only_when_asked_and_restored():
    before = sys.getswitchinterval()
    with collector.tuned():
        assert sys.getswitchinterval() == before
    with collector.tuned(switch_interval_ms=0.5):
        assert sys.getswitchinterval() == pytest.approx(0.0005)
    assert sys.getswitchinterval() == before


def test_the_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CX_HOME", str(tmp_path))
    defaults = ServiceSettings.from_environment()
    assert (defaults.gc_young, defaults.gc_older, defaults.switch_interval_ms) == (
        50_000,
        10,
        None,
    )
    monkeypatch.setenv("CX_SERVICE_GC_YOUNG", "5000")
    monkeypatch.setenv("CX_SERVICE_GC_OLDER", "100")
    monkeypatch.setenv("CX_SERVICE_SWITCH_INTERVAL_MS", "1")
    chosen = ServiceSettings.from_environment()
    assert (chosen.gc_young, chosen.gc_older, chosen.switch_interval_ms) == (5_000, 100, 1.0)
    monkeypatch.setenv("CX_SERVICE_GC_YOUNG", "many")
    with pytest.raises(SettingsError, match="CX_SERVICE_GC_YOUNG"):
        ServiceSettings.from_environment()
