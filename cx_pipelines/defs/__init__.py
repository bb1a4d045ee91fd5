"""The Dagster layer: one folder per domain, each exporting ``defs``."""
