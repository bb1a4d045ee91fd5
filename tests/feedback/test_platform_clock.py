"""The platform's "now" (``CX_NOW``, default the wall clock) decides what is in the future."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from decision_logs import decisions, drop, results_for, write_export

from cx_pipelines import config, warehouse
from cx_pipelines.feedback import process_results
from cx_pipelines.feedback.processing import QUARANTINE_TABLE
from cx_pipelines.loop.cycle import LoopSettings, ingest_clock


def _a_year_ahead() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC).replace(tzinfo=None).date() + timedelta(days=365))


def _future_run(home: Path) -> pd.DataFrame:
    decided = decisions(30, seed=4, run_key="future-run", decided_at=_a_year_ahead())
    write_export(home, decided)
    drop(home, "future.parquet", results_for(decided))
    return decided


def test_now_is_the_wall_clock_unless_cx_now_says_otherwise(monkeypatch) -> None:
    monkeypatch.delenv(config.NOW_VARIABLE, raising=False)
    wall = datetime.now(UTC).replace(tzinfo=None)
    assert abs(config.now() - wall) < timedelta(seconds=5)
    monkeypatch.setenv(config.NOW_VARIABLE, "2031-02-03")
    assert config.now() == datetime(2031, 2, 3)
    monkeypatch.setenv(config.NOW_VARIABLE, "2031-02-03T12:30:00+02:00")
    assert config.now() == datetime(2031, 2, 3, 10, 30)  # naive UTC
    monkeypatch.setenv(config.NOW_VARIABLE, "next tuesday")
    with pytest.raises(config.ClockError, match="CX_NOW='next tuesday'"):
        config.now()


def test_results_dated_after_today_are_quarantined_on_the_wall_clock(
    cx_home: Path, monkeypatch
) -> None:
    monkeypatch.delenv(config.NOW_VARIABLE, raising=False)
    _future_run(cx_home)

    run = process_results(run_id="run-1")

    assert run.update.total("matched") == 0 and run.update.total("quarantined") == 30
    assert set(run.update.reasons) == {"responded_at_not_in_future"}
    assert len(warehouse.read_table(QUARANTINE_TABLE)) == 30


def test_a_simulated_clock_after_today_accepts_them(cx_home: Path, monkeypatch) -> None:
    decided = _future_run(cx_home)
    monkeypatch.setenv(config.NOW_VARIABLE, (_a_year_ahead() + pd.Timedelta(days=7)).isoformat())

    run = process_results(run_id="run-1")

    assert run.update.total("matched") == 30 and run.update.total("quarantined") == 0
    assert len(warehouse.read_table("interaction_results")) == len(decided)


def test_the_simulated_clock_still_quarantines_its_own_future(cx_home: Path, monkeypatch) -> None:
    _future_run(cx_home)  # answered two days after the decision
    monkeypatch.setenv(config.NOW_VARIABLE, _a_year_ahead().isoformat())  # the decision day

    run = process_results(run_id="run-1")

    assert run.update.total("quarantined") == 30
    quarantined = warehouse.read_table(QUARANTINE_TABLE)
    assert (quarantined["quarantined_at"] == pd.Timestamp(_a_year_ahead(), tz="UTC")).all()


def test_the_loop_ingests_each_cycle_at_the_end_of_its_answers_window() -> None:
    settings = LoopSettings(cycles=60)  # a year of weekly cycles from 2026-10-01
    last = settings.decision_date(59)
    assert last > date(2027, 11, 1)
    assert ingest_clock(last, cycle_days=7) == datetime.combine(last, datetime.min.time()) + (
        timedelta(days=7)
    )
    # shorter cycles still wait for the simulator's longest response delay (7 days)
    assert ingest_clock(last, cycle_days=2) == ingest_clock(last, cycle_days=7)
