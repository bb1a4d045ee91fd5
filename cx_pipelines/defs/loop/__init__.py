"""Dagster definitions of the closed loop: off-policy evaluation of a candidate policy."""

import dagster as dg

from cx_pipelines.defs.loop.assets import policy_evaluation

defs = dg.Definitions(assets=[policy_evaluation])
