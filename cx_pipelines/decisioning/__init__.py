"""Platform-side decisioning in plain Python (no Dagster): the engine population from
warehouse tables, strategy simulation over it, and the ``cx strategy`` commands.

The engine (:mod:`cx_pipelines.engine`) knows nothing of the warehouse or the synthetic
world; this package joins them for the decisioning assets, the CLI and notebooks.
"""
