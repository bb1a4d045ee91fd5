"""Dagster definitions for the sources domain."""

import dagster as dg

defs = dg.Definitions()
