"""The one Dagster Definitions entry point; workspace.yaml and `cx materialize` load it."""

import dagster as dg

from cx_pipelines.defs import decisioning, features, feedback, sources, training
from cx_pipelines.defs.campaigns import defs as campaigns_defs
from cx_pipelines.defs.loop import defs as loop_defs
from cx_pipelines.defs.warehouse_io import WarehouseIOManager

defs = dg.Definitions.merge(
    sources.defs,
    features.defs,
    training.defs,
    decisioning.defs,
    campaigns_defs,
    feedback.defs,
    loop_defs,
    dg.Definitions(resources={"io_manager": WarehouseIOManager()}),
)
