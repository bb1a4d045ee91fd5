import pandas as pd
import pytest

from cx_pipelines import warehouse


def test_write_then_read_round_trips_and_the_catalog_has_a_view(cx_home):
    frame = pd.DataFrame({"customer_id": [1, 2, 3], "spend": [10.0, 0.0, 2.5]})
    warehouse.write_table("customer_kpis", frame)
    pd.testing.assert_frame_equal(warehouse.read_table("customer_kpis"), frame)
    assert warehouse.query("select sum(spend) as total from customer_kpis")["total"][0] == 12.5


def test_a_failed_write_leaves_the_previous_version_readable(cx_home):
    warehouse.write_table("accounts", pd.DataFrame({"account_id": [1, 2]}))

    with pytest.raises(RuntimeError), warehouse.table_writer("accounts") as writer:
        writer.write(pd.DataFrame({"account_id": [7, 8, 9]}))
        raise RuntimeError("crash in the middle of a write")

    assert warehouse.read_table("accounts")["account_id"].tolist() == [1, 2]
    assert not list((cx_home / "warehouse").glob(".*.tmp"))


def test_streamed_chunks_make_one_table(cx_home):
    with warehouse.table_writer("transactions") as writer:
        for start in range(0, 30, 10):
            writer.write(pd.DataFrame({"transaction_id": range(start, start + 10)}))
    assert warehouse.table_row_count("transactions") == 30


def test_reading_a_table_never_materialised_names_it(cx_home):
    with pytest.raises(warehouse.WarehouseError, match="'rfm_summary' has not been materialised"):
        warehouse.read_table("rfm_summary")


def test_previews_cut_long_text_so_rows_stay_one_line():
    from cx_pipelines.defs.warehouse_io import PREVIEW_CELL_CHARACTERS, table_metadata

    trace = '{"path": [' + ", ".join(['"node"'] * 500) + "]}"
    frame = pd.DataFrame({"customer_id": [1], "trace": [trace]})
    preview = table_metadata(frame)["preview"].value
    assert trace not in preview
    assert trace[: PREVIEW_CELL_CHARACTERS - 1] + "…" in preview


def _open_files_under(folder) -> list[str]:
    """Paths under ``folder`` that this process holds open (deleted ones included)."""
    import os

    held = []
    for descriptor in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:
            continue
        if target.startswith(str(folder)):
            held.append(target)
    return held


def test_a_frame_failing_mid_write_closes_the_file_and_names_table_and_file(cx_home):
    warehouse.write_table("accounts", pd.DataFrame({"account_id": [1, 2]}))

    with (
        pytest.raises(warehouse.WarehouseWriteError) as raised,
        warehouse.table_writer("accounts") as writer,
    ):
        writer.write(pd.DataFrame({"account_id": [7, 8]}))
        writer.write(pd.DataFrame({"account_id": ["seven", "eight"]}))  # fails mid-write

    message = str(raised.value)
    assert "'accounts'" in message and str(warehouse.table_path("accounts")) in message
    assert _open_files_under(cx_home) == []
    assert not list((cx_home / "warehouse").glob(".*.tmp"))
    assert warehouse.read_table("accounts")["account_id"].tolist() == [1, 2]


def test_an_error_in_the_callers_block_still_closes_the_writer(cx_home):
    with pytest.raises(KeyError), warehouse.table_writer("accounts") as writer:
        writer.write(pd.DataFrame({"account_id": [7, 8]}))
        raise KeyError("the caller failed")

    assert _open_files_under(cx_home) == []
    assert not list((cx_home / "warehouse").glob(".*.tmp"))


def test_a_failing_quarantine_part_closes_its_writer_and_names_it(cx_home):
    from cx_pipelines.ingestion import quarantine

    with (
        pytest.raises(warehouse.WarehouseWriteError, match="quarantined_rows.*customers"),
        quarantine.part_writer("customers") as writer,
    ):
        writer.write(pd.DataFrame({"source_key": ["1"]}))
        writer.write(pd.DataFrame({"source_key": [object()]}))
    assert _open_files_under(cx_home) == []
    assert not list((cx_home / "warehouse").rglob(".*.tmp"))


def test_stale_temporary_files_of_dead_writers_are_swept_and_live_ones_kept(cx_home):
    import os
    import subprocess

    from cx_pipelines import recovery

    warehouse.write_table("accounts", pd.DataFrame({"account_id": [1]}))
    finished = subprocess.run(["true"], check=True)  # noqa: F841 (a pid now surely unused)
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = cx_home / "warehouse"
    stale = [
        folder / f".accounts.{dead.pid}-{'a' * 32}.tmp",
        cx_home / f".warehouse.{dead.pid}-{'b' * 32}.tmp",
        cx_home / f".warehouse.{dead.pid}-{'b' * 32}.tmp.wal",
        folder / "_quarantine" / f".customers.{dead.pid}-{'c' * 32}.tmp",
    ]
    live = folder / f".customers.{os.getpid()}-{'d' * 32}.tmp"
    for path in [*stale, live]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"partial")

    removed = recovery.sweep_temporary_files()

    assert sorted(removed) == sorted(stale)
    assert live.exists() and not any(path.exists() for path in stale)


def test_the_catalog_names_files_relative_to_cx_home(cx_home, tmp_path, monkeypatch):
    import shutil

    warehouse.write_table("customer_kpis", pd.DataFrame({"spend": [1.0, 2.0]}))
    moved = tmp_path / "elsewhere"
    shutil.move(cx_home, moved)
    monkeypatch.setenv("CX_HOME", str(moved))

    assert warehouse.query("select sum(spend) as s from customer_kpis")["s"][0] == 3.0
