"""While the service runs, startup's objects are frozen and the young generation is
collected less often; the previous settings come back when it stops."""

from __future__ import annotations

import gc

from cx_pipelines.service import collector


def test_the_collector_is_tuned_while_the_service_runs_and_restored_after():
    before = gc.get_threshold()
    startup = [{"kept": n} for n in range(1_000)]
    with collector.tuned():
        assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() >= len(startup)
        cycle: list = []
        cycle.append(cycle)  # cycles are still collected
        del cycle
        assert gc.collect() >= 1
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
