"""IO manager that stores every DataFrame asset as a warehouse table named after the asset."""

from __future__ import annotations

import dagster as dg
import pandas as pd

from cx_pipelines import privacy, warehouse

PREVIEW_ROWS = 10
PREVIEW_CELL_CHARACTERS = 60


def _shorten(value: object) -> object:
    """Long text (a JSON trace, a raw row) cut so one preview row stays one line high."""
    if isinstance(value, str) and len(value) > PREVIEW_CELL_CHARACTERS:
        return value[: PREVIEW_CELL_CHARACTERS - 1] + "…"
    return value


def table_metadata(frame: pd.DataFrame) -> dict[str, dg.MetadataValue]:
    """Row count, column schema and a preview, as shown on an asset's page in the UI.

    Personal columns are masked in the preview (:mod:`cx_pipelines.privacy`): the event log
    that keeps it is read by everyone with access to the UI.
    """
    return {
        "dagster/row_count": dg.MetadataValue.int(len(frame)),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(str(name), str(dtype)) for name, dtype in frame.dtypes.items()]
        ),
        "preview": dg.MetadataValue.md(
            privacy.mask_frame(frame.head(PREVIEW_ROWS)).map(_shorten).to_markdown(index=False)
        ),
    }


class WarehouseIOManager(dg.ConfigurableIOManager):
    """Writes asset outputs atomically to Parquet and reads upstream tables back by name."""

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | None) -> None:
        if obj is None:  # the asset wrote its table itself (streamed); nothing to store
            return
        name = context.asset_key.path[-1]
        path = warehouse.write_table(name, obj)
        metadata = table_metadata(obj)
        metadata["path"] = dg.MetadataValue.path(str(path))
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        return warehouse.read_table(context.asset_key.path[-1])
