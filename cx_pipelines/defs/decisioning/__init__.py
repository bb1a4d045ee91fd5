"""Dagster definitions for the decisioning domain."""

import dagster as dg

defs = dg.Definitions()
