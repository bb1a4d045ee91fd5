"""Customer and account KPIs, rule-based segments and purchase patterns (seed 002).

Plain pandas/numpy, no Dagster: the features assets in ``cx_pipelines.defs.features``
wire these functions, and notebooks, models and tests call them directly.
"""
