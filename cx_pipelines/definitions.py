"""The one Dagster Definitions entry point; workspace.yaml and `cx materialize` load it."""

import dagster as dg

from cx_pipelines.defs import campaigns, decisioning, features, feedback, loop, sources, training
from cx_pipelines.defs.warehouse_io import WarehouseIOManager

defs = dg.Definitions.merge(
    sources.defs,
    features.defs,
    training.defs,
    decisioning.defs,
    campaigns.defs,
    feedback.defs,
    loop.defs,
    dg.Definitions(resources={"io_manager": WarehouseIOManager()}),
)
