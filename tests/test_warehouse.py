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
