"""Matching results to decisions: reasons, duplicates, conflicts, late arrivals, reconciliation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from decision_logs import decisions, drop, results_for, write_export

from cx_pipelines import warehouse
from cx_pipelines.feedback import RESULTS_DTYPES, process_results
from cx_pipelines.feedback.decision_log import DecisionLogError, load_decision_log
from cx_pipelines.feedback.processing import QUARANTINE_TABLE, RESULTS_TABLE
from cx_pipelines.ml import training_data


def reconciles(run) -> bool:
    for counts in run.update.inputs:
        assert counts.rows == counts.matched + counts.duplicates + counts.quarantined, counts
    return True


def test_results_are_matched_to_their_decision_with_its_columns(cx_home: Path) -> None:
    decided = decisions(40, seed=1)
    write_export(cx_home, decided)
    drop(cx_home, "first.parquet", results_for(decided))

    run = process_results(run_id="run-1")

    assert reconciles(run) and run.update.total("matched") == 40
    table = warehouse.read_table(RESULTS_TABLE)
    assert list(table.columns) == list(RESULTS_DTYPES)
    joined = table.merge(decided, on="contact_id", suffixes=("", "_decided"))
    assert len(joined) == 40
    assert (joined["treated"] == (joined["group_decided"] == "treated")).all()
    assert (joined["contacted_at"] == joined["decided_at"]).all()
    assert np.allclose(joined["selection_probability"], joined["selection_probability_decided"])
    assert (joined["run_key"] == decided["run_key"].iloc[0]).all()
    assert (joined["responded"] == (joined["revenue"] > 0)).all()
    assert not (cx_home / "inbox" / "first.parquet").exists()
    assert (cx_home / "inbox" / "processed" / "first.parquet").exists()
    # training appends the table to offer_history
    history = pd.DataFrame(
        {
            "contact_id": [1],
            "campaign_id": ["past"],
            "customer_id": [1],
            "offer_type": ["savings"],
            "channel": ["email"],
            "treated": [True],
            "contacted_at": [pd.Timestamp("2025-01-01")],
            "responded": [False],
            "revenue": [0.0],
        }
    )
    assert len(training_data.contacts(history, table)) == 41


def _bad_rows(decided: pd.DataFrame) -> tuple[pd.DataFrame, dict[int, str]]:
    """Results with one fault per row (by data row number) and the reason each must get."""
    rows = results_for(decided.iloc[:11], responded=np.ones(11, dtype=bool))
    rows = rows.astype({"revenue": object, "responded_at": object, "customer_id": object})
    faults = {
        1: ("revenue", -5.0, "revenue_in_range"),
        2: ("responded_at", "next tuesday", "responded_at_is_timestamp"),
        3: ("outcome", "maybe", "outcome_in_domain"),
        4: ("contact_id", None, "contact_id_not_null"),
        5: ("contact_id", "no-such-contact", "no_matching_decision"),
        6: ("customer_id", 999_999, "customer_id_does_not_match_decision"),
        7: ("channel", "web", "offer_does_not_match_decision"),
        8: ("responded_at", "2026-10-01 08:00:00", "responded_before_decision"),
        9: ("offer_type", "balloon", "offer_type_in_domain"),
    }
    expected = {}
    for number, (column, value, reason) in faults.items():
        rows.iloc[number - 1, rows.columns.get_loc(column)] = value
        expected[number] = reason.replace("customer_id_does", "customer_does")
    # row 10: not responded but with revenue; row 11 is good
    rows.iloc[9, rows.columns.get_loc("outcome")] = "not_responded"
    expected[10] = "revenue_zero_unless_responded"
    return rows, expected


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_every_bad_row_is_quarantined_with_its_reason_file_and_row(
    cx_home: Path, suffix: str
) -> None:
    decided = decisions(20, seed=2)
    write_export(cx_home, decided)
    rows, expected = _bad_rows(decided)
    if suffix == "parquet":
        rows = rows.astype(str).replace({"None": None, "nan": None})
    drop(cx_home, f"bad.{suffix}", rows)

    run = process_results(run_id="run-1")

    assert reconciles(run)
    counts = run.update.inputs[0]
    assert (counts.rows, counts.matched, counts.quarantined) == (11, 1, 10)
    quarantine = warehouse.read_table(QUARANTINE_TABLE)
    assert dict(zip(quarantine["row_number"], quarantine["reason"], strict=True)) == expected
    assert (quarantine["source"] == f"bad.{suffix}").all()
    assert (quarantine["run_id"] == "run-1").all()
    shared = warehouse.read_table("quarantined_rows")
    ours = shared[shared["source_table"] == RESULTS_TABLE]
    assert sorted(ours["source_key"]) == sorted(f"bad.{suffix}:{n}" for n in expected)


def test_a_malformed_csv_line_is_quarantined_not_lost(cx_home: Path) -> None:
    decided = decisions(5, seed=3)
    write_export(cx_home, decided)
    path = drop(cx_home, "short.csv", results_for(decided))
    lines = path.read_text().splitlines()
    lines.insert(3, "just,three,fields")
    path.write_text("\n".join(lines) + "\n")

    run = process_results(run_id="run-1")

    counts = run.update.inputs[0]
    assert (counts.rows, counts.matched, counts.quarantined) == (6, 5, 1)
    quarantine = warehouse.read_table(QUARANTINE_TABLE)
    assert quarantine["reason"].tolist() == ["row_is_malformed"]
    assert quarantine["row_number"].tolist() == [3]
    assert "three" not in quarantine["raw_row"].iloc[0]


def test_repeats_are_duplicates_and_a_different_second_outcome_is_quarantined(
    cx_home: Path,
) -> None:
    decided = decisions(10, seed=4)
    write_export(cx_home, decided)
    results = results_for(decided, responded=np.zeros(10, dtype=bool))
    repeated = pd.concat([results, results.iloc[:3]], ignore_index=True)
    drop(cx_home, "one.parquet", repeated)
    first = process_results(run_id="run-1")
    assert (first.update.total("matched"), first.update.total("duplicates")) == (10, 3)

    changed = results.iloc[3:5].copy()
    changed["outcome"], changed["revenue"] = "responded", 25.0
    drop(cx_home, "two.csv", pd.concat([changed, results.iloc[5:8]], ignore_index=True))
    second = process_results(run_id="run-2")

    assert reconciles(second)
    counts = second.update.inputs[0]
    assert (counts.matched, counts.duplicates, counts.quarantined) == (0, 3, 2)
    assert second.update.reasons == {"conflicting_outcome": 2}
    table = warehouse.read_table(RESULTS_TABLE)
    assert len(table) == 10 and not table["responded"].any()  # the first outcome stands


def test_reprocessing_the_same_file_changes_nothing(cx_home: Path) -> None:
    decided = decisions(30, seed=5)
    write_export(cx_home, decided)
    results = results_for(decided)
    results.loc[0, "contact_id"] = "unknown"
    drop(cx_home, "batch.csv", results)
    process_results(run_id="run-1")
    table = warehouse.read_table(RESULTS_TABLE)
    quarantine = warehouse.read_table(QUARANTINE_TABLE)

    shutil.copy(cx_home / "inbox" / "processed" / "batch.csv", cx_home / "inbox" / "batch.csv")
    again = process_results(run_id="run-2")

    counts = again.update.inputs[0]
    assert (counts.matched, counts.duplicates, counts.quarantined) == (0, 29, 1)
    pd.testing.assert_frame_equal(warehouse.read_table(RESULTS_TABLE), table)
    after = warehouse.read_table(QUARANTINE_TABLE)
    columns = ["source", "source_checksum", "row_number", "contact_id", "reason", "raw_row"]
    pd.testing.assert_frame_equal(after[columns], quarantine[columns])
    assert (cx_home / "inbox" / "processed" / "batch.1.csv").exists()


def test_late_results_for_an_earlier_decision_are_matched_and_added(cx_home: Path) -> None:
    week_one = decisions(20, run_key="2026-10-05-aaa", seed=6)
    write_export(cx_home, week_one)
    drop(cx_home, "week1.parquet", results_for(week_one).iloc[:12])
    process_results(run_id="run-1")

    week_two = decisions(
        15, run_key="2026-10-12-bbb", seed=7, decided_at=pd.Timestamp("2026-10-12 09:00")
    )
    write_export(cx_home, week_two)
    late = pd.concat([results_for(week_one).iloc[12:], results_for(week_two)], ignore_index=True)
    drop(cx_home, "week2.parquet", late)
    run = process_results(run_id="run-2")

    assert run.update.total("matched") == 8 + 15 and run.update.total("quarantined") == 0
    table = warehouse.read_table(RESULTS_TABLE)
    assert table.groupby("run_key").size().to_dict() == {"2026-10-05-aaa": 20, "2026-10-12-bbb": 15}


def test_quarantine_keeps_only_result_columns_never_personal_data(cx_home: Path) -> None:
    decided = decisions(4, seed=8)
    write_export(cx_home, decided)
    results = results_for(decided)
    results["contact_id"] = "stranger"
    results["email"] = "jane.doe@example.com"
    results["full_name"] = "Jane Doe"
    drop(cx_home, "leaky.csv", results)

    run = process_results(run_id="run-1")

    assert run.update.total("quarantined") == 4
    for text in warehouse.read_table(QUARANTINE_TABLE)["raw_row"]:
        row = json.loads(text)
        assert set(row) == {
            "contact_id",
            "customer_id",
            "campaign_id",
            "offer_type",
            "channel",
            "outcome",
            "revenue",
            "responded_at",
        }
        assert "Jane" not in text and "@" not in text


def test_an_unreadable_file_is_rejected_and_kept_while_the_others_go_through(
    cx_home: Path,
) -> None:
    decided = decisions(6, seed=9)
    write_export(cx_home, decided)
    drop(cx_home, "good.parquet", results_for(decided))
    (cx_home / "inbox" / "broken.parquet").write_bytes(b"not parquet at all")
    results_for(decided).drop(columns=["outcome"]).to_csv(cx_home / "inbox" / "narrow.csv")

    run = process_results(run_id="run-1")

    assert run.update.total("matched") == 6
    assert set(run.rejected_files) == {"broken.parquet", "narrow.csv"}
    assert "outcome" in run.rejected_files["narrow.csv"]
    assert (cx_home / "inbox" / "rejected" / "broken.parquet").exists()
    assert (cx_home / "inbox" / "rejected" / "narrow.csv").exists()


def test_a_failed_run_leaves_the_files_and_the_previous_tables(cx_home: Path) -> None:
    decided = decisions(8, seed=10)
    write_export(cx_home, decided)
    drop(cx_home, "one.parquet", results_for(decided).iloc[:4])
    process_results(run_id="run-1")
    before = warehouse.read_table(RESULTS_TABLE)
    drop(cx_home, "two.parquet", results_for(decided).iloc[4:])
    broken = cx_home / "exports" / "other" / "run-x" / "decisions.parquet"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"garbage")

    with pytest.raises(DecisionLogError, match="run-x"):
        process_results(run_id="run-2")

    assert (cx_home / "inbox" / "two.parquet").exists()
    pd.testing.assert_frame_equal(warehouse.read_table(RESULTS_TABLE), before)
    broken.unlink()
    assert process_results(run_id="run-3").update.total("matched") == 4


def test_service_decisions_are_matched_by_decision_id(cx_home: Path) -> None:
    log = cx_home / "decision_log"
    log.mkdir()
    records = [
        {
            "decision_id": f"d-{i}",
            "customer_id": 100 + i,
            "channel": "web",
            "interaction_type": "login",
            "treatment": "card_web",
            "offer_type": "credit_card",
            "rank": 1,
            "selection_probability": 0.9,
            "decided_at": "2026-10-20T10:00:00Z",
            "strategy_hash": "svc-hash",
            "model_versions": {"propensity": "4"},
            "trace": {"test_group": "champion", "segment": "young"},
        }
        for i in range(3)
    ]
    lines = [json.dumps(record) for record in records] + ['{"decision_id": "cut sh']
    (log / "2026-10-20.jsonl").write_text("\n".join(lines) + "\n")
    results = pd.DataFrame(
        {
            "contact_id": ["d-0", "d-1", "d-2"],
            "customer_id": [100, 101, 102],
            "campaign_id": ["realtime", "realtime", "realtime"],
            "offer_type": "credit_card",
            "channel": "web",
            "outcome": ["responded", "not_responded", "not_responded"],
            "revenue": [120.0, 0.0, 0.0],
            "responded_at": ["2026-10-20T10:05:00Z"] * 3,
        }
    )
    drop(cx_home, "web.csv", results)

    run = process_results(run_id="run-1")

    assert run.update.total("matched") == 3
    assert run.decision_log.unreadable_lines == {str(log / "2026-10-20.jsonl"): 1}
    table = warehouse.read_table(RESULTS_TABLE)
    assert set(table["run_key"]) == {"service"} and table["treated"].all()
    assert set(table["strategy_hash"]) == {"svc-hash"}


def test_the_service_log_is_read_where_cx_decision_log_dir_points(
    cx_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "service-log"
    elsewhere.mkdir()
    monkeypatch.setenv("CX_DECISION_LOG_DIR", str(elsewhere))
    record = {
        "decision_id": "d-elsewhere",
        "customer_id": 100,
        "channel": "web",
        "interaction_type": "login",
        "treatment": "card_web",
        "offer_type": "credit_card",
        "rank": 1,
        "selection_probability": 1.0,
        "decided_at": "2026-10-20T10:00:00Z",
        "strategy_hash": "svc-hash",
        "model_versions": {},
        "trace": {},
    }
    (elsewhere / "2026-10-20.jsonl").write_text(json.dumps(record) + "\n")

    decisions = load_decision_log().decisions

    assert decisions["contact_id"].tolist() == ["d-elsewhere"]
