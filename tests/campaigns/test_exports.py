"""Exports: INTERFACES.md §2 columns, checksummed manifest, atomic, byte-identical re-runs."""

from __future__ import annotations

import json
from pathlib import Path

import campaign_support as synthetic
import pandas as pd
import pytest

from cx_pipelines.campaigns import exports

PERSONAL = {"email", "name", "first_name", "last_name", "birth_year", "annual_income", "age"}


@pytest.fixture(scope="module")
def targets() -> pd.DataFrame:
    frame = synthetic.population(300)
    result = synthetic.run(
        frame, synthetic.scores(frame), synthetic.history(frame, {}),
        synthetic.competing_campaigns(),
    )  # fmt: skip
    return result.targets


def export(targets: pd.DataFrame, root: Path, campaign_id: str = "card_email", **options) -> Path:
    decisions = targets[targets["campaign_id"] == campaign_id]
    return exports.write_export(
        decisions,
        root=root,
        campaign_id=campaign_id,
        run_key=options.pop("run_key", str(decisions["run_key"].iloc[0])),
        manifest={"strategy_hash": "strategyhash", "model_versions": {"m": "1"}},
        **options,
    )


def test_export_files_columns_and_manifest(targets: pd.DataFrame, tmp_path: Path) -> None:
    folder = export(targets, tmp_path)
    rows = targets[targets["campaign_id"] == "card_email"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "contacts.csv",
        "contacts.parquet",
        "decisions.parquet",
        "manifest.json",
    ]
    contacts = pd.read_csv(folder / "contacts.csv")
    assert contacts.columns.tolist() == exports.CONTACT_COLUMNS
    assert len(contacts) == int((rows["group"] == "treated").sum())
    pd.testing.assert_frame_equal(contacts, pd.read_parquet(folder / "contacts.parquet"))
    decisions = pd.read_parquet(folder / "decisions.parquet")
    assert decisions.columns.tolist() == exports.DECISION_COLUMNS
    assert sorted(decisions["contact_id"]) == sorted(rows["contact_id"])
    assert set(decisions["group"]) == {"treated", "control"}
    assert decisions["exploration"].dtype == bool
    assert str(decisions["decided_at"].dtype).startswith("datetime64")
    for name in ("contacts.csv", "decisions.parquet"):
        assert PERSONAL.isdisjoint(pd.read_csv(folder / name).columns if name.endswith("csv")
                                   else pd.read_parquet(folder / name).columns)  # fmt: skip
    manifest = exports.read_manifest(folder)
    assert manifest["run_key"] == folder.name and manifest["campaign_id"] == "card_email"
    assert manifest["files"]["decisions.parquet"]["rows"] == len(rows)
    assert exports.verify_export(folder) == []
    assert (tmp_path / "card_email" / "LATEST").read_text().strip() == folder.name


def test_rerun_writes_identical_bytes(targets: pd.DataFrame, tmp_path: Path) -> None:
    first = export(targets, tmp_path / "one")
    second = export(targets, tmp_path / "two")
    again = export(targets, tmp_path / "one")
    for name in ("contacts.csv", "contacts.parquet", "decisions.parquet", "manifest.json"):
        assert (
            (first / name).read_bytes()
            == (second / name).read_bytes()
            == (again / name).read_bytes()
        )


def fail_on_second_parquet(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second Parquet file of an export fail, as a full disk would."""
    written = []
    real = exports._write_parquet

    def failing(frame, path):
        written.append(path.name)
        if len(written) == 2:
            raise OSError(28, "No space left on device (simulated)")
        real(frame, path)

    monkeypatch.setattr(exports, "_write_parquet", failing)


def test_failure_mid_write_leaves_the_previous_export(
    targets: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = export(targets, tmp_path, run_key="2026-09-01-aaaaaaaaaa")
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    fail_on_second_parquet(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        export(targets, tmp_path, run_key="2026-10-01-bbbbbbbbbb")
    base = tmp_path / "card_email"
    assert sorted(p.name for p in base.iterdir()) == ["2026-09-01-aaaaaaaaaa", "LATEST"]
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert (base / "LATEST").read_text().strip() == "2026-09-01-aaaaaaaaaa"
    # the same run key failing again also leaves the complete export in place
    fail_on_second_parquet(monkeypatch)
    with pytest.raises(OSError, match="simulated"):
        export(targets, tmp_path, run_key="2026-09-01-aaaaaaaaaa")
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before


KILLED_WRITER = """
import sys, time
from pathlib import Path
import pandas as pd
from cx_pipelines.campaigns import exports
real = exports._write_parquet
def slow(frame, path):
    real(frame, path)
    Path(sys.argv[3]).write_text("writing")
    time.sleep(60)  # killed here, half-way through the export
exports._write_parquet = slow
decisions = pd.read_parquet(sys.argv[1])
exports.write_export(decisions, root=Path(sys.argv[2]), campaign_id="card_email",
                     run_key="2026-10-01-cccccccccc", manifest={})
"""


def kill_mid_write(targets: pd.DataFrame, tmp_path: Path) -> None:
    """Start a writer of run 2026-10-01-cccccccccc under tmp_path/root and SIGKILL it mid-way."""
    import signal
    import subprocess
    import sys
    import time

    rows = tmp_path / "rows.parquet"
    targets[targets["campaign_id"] == "card_email"].to_parquet(rows)
    flag = tmp_path / "flag"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(rows), str(tmp_path / "root"), str(flag)]
    )
    try:
        deadline = time.monotonic() + 60
        while not flag.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert flag.exists(), "the writer never started"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()


@pytest.mark.slow  # a subprocess importing the package: ~10 s
def test_a_kill_mid_write_leaves_the_previous_export(targets: pd.DataFrame, tmp_path: Path) -> None:
    previous = export(targets, tmp_path / "root", run_key="2026-09-01-aaaaaaaaaa")
    before = {p.name: p.read_bytes() for p in previous.iterdir()}
    kill_mid_write(targets, tmp_path)
    base = tmp_path / "root" / "card_email"
    assert not (base / "2026-10-01-cccccccccc").exists()
    assert {p.name: p.read_bytes() for p in previous.iterdir()} == before
    assert (base / "LATEST").read_text().strip() == "2026-09-01-aaaaaaaaaa"
    assert exports.verify_export(previous) == []


def _dead_pid() -> int:
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.slow  # a subprocess importing the package: ~10 s
def test_the_next_export_sweeps_a_killed_writers_folder_and_keeps_a_live_one(
    targets: pd.DataFrame, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from cx_pipelines.recovery import process_start_ticks

    kill_mid_write(targets, tmp_path)
    base = tmp_path / "root" / "card_email"
    (killed,) = [p for p in base.iterdir() if p.name.startswith(".tmp-")]
    assert (killed / "contacts.parquet").exists(), "the killed writer left its half export"
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        ticks = process_start_ticks(sleeper.pid)
        live = base / f".tmp-2026-10-02-dddddddddd-{sleeper.pid}-{ticks}-{'a' * 32}"
        live.mkdir()
        (live / "contacts.csv").write_text("being written")
        dead = base / f".old-2026-09-01-aaaaaaaaaa-{_dead_pid()}--{'b' * 32}"
        dead.mkdir()
        # a live process id whose start time differs: the id was reused, the writer is gone
        reused = base / f".LATEST-{os.getpid()}-1-{'c' * 32}"
        reused.write_text("x")
        assert exports.stale_temporaries(base) == sorted([killed, dead, reused])

        folder = export(targets, tmp_path / "root", run_key="2026-10-01-cccccccccc")

        assert sorted(p.name for p in base.iterdir()) == sorted(
            [live.name, "2026-10-01-cccccccccc", "LATEST"]
        )
        assert (live / "contacts.csv").read_text() == "being written"
        assert exports.verify_export(folder) == []
    finally:
        sleeper.kill()
        sleeper.wait()
    assert exports.stale_temporaries(base) == [live]  # its writer is gone now


def test_an_export_leaves_no_temporary_behind_and_names_them_by_writer(
    targets: pd.DataFrame, tmp_path: Path
) -> None:
    import os

    first = export(targets, tmp_path, run_key="2026-10-01-eeeeeeeeee")
    (first / "manifest.json").write_text("{}")  # a different export in place: retired
    export(targets, tmp_path, run_key="2026-10-01-eeeeeeeeee")
    base = tmp_path / "card_email"
    assert sorted(p.name for p in base.iterdir()) == ["2026-10-01-eeeeeeeeee", "LATEST"]
    assert exports.verify_export(first) == []
    name = exports._temporary_name("tmp", "2026-10-01-eeeeeeeeee")
    assert name.startswith(f".tmp-2026-10-01-eeeeeeeeee-{os.getpid()}-")
    (base / name).mkdir()
    assert exports.stale_temporaries(base) == []  # this process is alive


def test_a_tampered_export_fails_verification(targets: pd.DataFrame, tmp_path: Path) -> None:
    folder = export(targets, tmp_path)
    with (folder / "contacts.csv").open("a") as handle:
        handle.write("1,card_email,1,credit_card,email,x,99\n")
    problems = exports.verify_export(folder)
    assert any("sha256 differs" in p for p in problems)
    assert any("rows, manifest says" in p for p in problems)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["contacts.csv"]["sha256"] != ""


def test_decisions_of_another_campaign_are_refused(targets: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="other campaigns"):
        exports.write_export(
            targets, root=tmp_path, campaign_id="card_email", run_key="k", manifest={}
        )
