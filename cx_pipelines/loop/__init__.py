"""The closed loop: decide, target, export, let the simulated customers answer, ingest,
report and retrain, cycle after cycle, measured against the world's truth."""
