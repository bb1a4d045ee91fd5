"""cx-pipelines: open customer decision management, orchestrated by Dagster."""

__version__ = "0.1.0"
