"""The strategy file's JSON Schema for the registered mechanism kinds, and its shipped copy.

``strategy_json_schema()`` is the source of truth; ``cx_pipelines/engine/strategy.schema.json``
is generated from it (``python -m cx_pipelines.engine.loading.schema``) so editors and
other tools can validate strategy files, and a test keeps the two in step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from cx_pipelines.engine.language.schema import document_schema
from cx_pipelines.engine.mechanisms import KINDS

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "strategy.schema.json"


def strategy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every strategy file must satisfy."""
    return document_schema(KINDS)


VALIDATOR = jsonschema.Draft202012Validator(strategy_json_schema())
"""The validator strategy files are read with (built once)."""


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate the shipped JSON file from :func:`strategy_json_schema`."""
    path.write_text(json.dumps(strategy_json_schema(), indent=2, sort_keys=False) + "\n")
    return path


if __name__ == "__main__":
    print(write_schema())
