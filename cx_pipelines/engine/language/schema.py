"""JSON Schema of the strategy file format, defined in Python and shipped as JSON.

``strategy_json_schema()`` is the source of truth; ``strategy.schema.json`` next to
this module is generated from it (``python -m cx_pipelines.engine.language.schema``) so editors
and other tools can validate strategy files, and a test keeps the two in step.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCHEMA_PATH = Path(__file__).parents[1] / "strategy.schema.json"

IDENTIFIER = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
ATTRIBUTE_NAME = {
    "type": "string",
    "pattern": r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
}
EXPRESSION = {
    "description": "an expression of the engine's expression language, or a constant",
    "type": ["string", "number", "boolean"],
}
SCALAR = {"type": ["string", "number", "boolean"]}
BOUND = {"type": ["number", "null"]}
BAND = {
    "description": "half-open interval [from, to); null = unbounded",
    "type": "array",
    "prefixItems": [BOUND, BOUND],
    "minItems": 2,
    "maxItems": 2,
}
MECHANISM_TYPES = [
    "decision_tree",
    "matrix",
    "scorecard",
    "model_score",
    "list_processor",
    "user_exit",
    "aggregate",
    "calculation",
]


def _obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def _mechanism_variant(kind: str, properties: dict[str, Any], required: list[str]) -> dict:
    common = {
        "type": {"const": kind},
        "description": {"type": "string"},
        "over": IDENTIFIER,
        "output": ATTRIBUTE_NAME,
    }
    return {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": _obj({**common, **properties}, ["type", "output", *required]),
    }


def _axis() -> dict:
    return _obj(
        {
            "attribute": ATTRIBUTE_NAME,
            "expression": EXPRESSION,
            "bands": {"type": "array", "items": BAND, "minItems": 1},
            "categories": {"type": "array", "items": SCALAR, "minItems": 1},
        },
        oneOf=[{"required": ["bands"]}, {"required": ["categories"]}],
    )


def strategy_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) every strategy file must satisfy."""
    attribute = _obj(
        {
            "type": {"enum": ["number", "string", "boolean", "date"]},
            "derived": {"type": "boolean"},
            "description": {"type": "string"},
        },
        ["type"],
    )
    outcome = {
        "description": "a leaf value, a nested list of branches, or {decision, call}",
        "anyOf": [
            SCALAR,
            {"$ref": "#/$defs/branches"},
            _obj({"decision": SCALAR, "call": IDENTIFIER}, ["decision"]),
        ],
    }
    branches = {
        "type": "array",
        "minItems": 1,
        "items": {
            "anyOf": [
                _obj({"when": EXPRESSION, "then": {"$ref": "#/$defs/outcome"}}, ["when", "then"]),
                _obj({"else": {"$ref": "#/$defs/outcome"}}, ["else"]),
            ]
        },
    }
    characteristic = _obj(
        {
            "attribute": ATTRIBUTE_NAME,
            "expression": EXPRESSION,
            "bins": {
                "type": "array",
                "minItems": 1,
                "items": _obj({"range": BAND, "points": {"type": "number"}}, ["range", "points"]),
            },
            "categories": {"type": "object", "additionalProperties": {"type": "number"}},
            "other": {"type": "number"},
            "missing": {"type": "number"},
        },
        oneOf=[{"required": ["bins"]}, {"required": ["categories"]}],
    )
    mechanism = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": MECHANISM_TYPES}},
        "allOf": [
            _mechanism_variant("decision_tree", {"tree": {"$ref": "#/$defs/branches"}}, ["tree"]),
            _mechanism_variant(
                "matrix",
                {
                    "rows": _axis(),
                    "columns": _axis(),
                    "values": {"type": "array", "minItems": 1, "items": {"type": "array"}},
                    "default": SCALAR,
                },
                ["rows", "values"],
            ),
            _mechanism_variant(
                "scorecard",
                {
                    "base": {"type": "number"},
                    "characteristics": {"type": "array", "minItems": 1, "items": characteristic},
                },
                ["characteristics"],
            ),
            _mechanism_variant(
                "model_score",
                {
                    "model": {"type": "string"},
                    "input": ATTRIBUTE_NAME,
                    "version": {"type": ["string", "number"]},
                    "default": {"type": ["number", "null"]},
                },
                ["model", "input"],
            ),
            _mechanism_variant(
                "list_processor",
                {
                    "items": {
                        "type": "array",
                        "minItems": 1,
                        "items": _obj(
                            {"id": IDENTIFIER, "when": EXPRESSION, "score": EXPRESSION},
                            ["id", "score"],
                        ),
                    }
                },
                ["items"],
            ),
            _mechanism_variant(
                "user_exit",
                {
                    "function": {"type": "string"},
                    "module": {"type": "string"},
                    "inputs": {"type": "array", "items": ATTRIBUTE_NAME},
                },
                ["function", "inputs"],
            ),
            _mechanism_variant(
                "aggregate",
                {
                    "function": {"enum": ["any", "all", "count", "sum", "min", "max", "mean"]},
                    "value": EXPRESSION,
                    "where": EXPRESSION,
                },
                ["over", "function", "value"],
            ),
            _mechanism_variant("calculation", {"value": EXPRESSION}, ["value"]),
        ],
    }
    process = _obj(
        {
            "description": {"type": "string"},
            "mechanism": IDENTIFIER,
            "mechanisms": {"type": "array", "items": IDENTIFIER, "minItems": 1},
            "by_test_group": {
                "type": "object",
                "additionalProperties": {
                    "anyOf": [IDENTIFIER, {"type": "array", "items": IDENTIFIER, "minItems": 1}]
                },
            },
        },
        oneOf=[
            {"required": ["mechanism"]},
            {"required": ["mechanisms"]},
            {"required": ["by_test_group"]},
        ],
    )
    event = {
        "anyOf": [
            {"type": "array", "items": IDENTIFIER},
            _obj(
                {
                    "description": {"type": "string"},
                    "interaction_type": IDENTIFIER,
                    "processes": {"type": "array", "items": IDENTIFIER},
                    "categorize": {"type": "boolean"},
                },
                ["processes"],
            ),
        ]
    }
    percentages = {"type": "object", "additionalProperties": {"type": "number", "minimum": 0}}
    term = EXPRESSION
    treatment = _obj(
        {
            "description": {"type": "string"},
            "propensity": term,
            "value": term,
            "margin": term,
            "uplift": term,
            "cost": term,
            "formula": EXPRESSION,
        },
        ["propensity", "value"],
    )
    policy_rule = _obj(
        {
            "treatments": {
                "anyOf": [{"const": "*"}, {"type": "array", "items": IDENTIFIER, "minItems": 1}]
            },
            "when": EXPRESSION,
            "reason": {"type": "string"},
        },
        ["treatments", "when", "reason"],
    )
    positive = {"type": "number", "exclusiveMinimum": 0}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cx-pipelines.dev/schemas/strategy.schema.json",
        "title": "cx-pipelines strategy",
        "description": "A decision strategy: see cx_pipelines/engine/FORMAT.md.",
        "$defs": {"outcome": outcome, "branches": branches},
        **_obj(
            {
                "strategy": IDENTIFIER,
                "version": {"type": "integer"},
                "description": {"type": "string"},
                "data_dictionary": _obj(
                    {
                        "customer": {
                            "type": "object",
                            "propertyNames": ATTRIBUTE_NAME,
                            "additionalProperties": attribute,
                        },
                        "accounts": {
                            "type": "object",
                            "propertyNames": IDENTIFIER,
                            "additionalProperties": _obj(
                                {
                                    "description": {"type": "string"},
                                    "max_iterations": {"type": "integer", "minimum": 1},
                                    "attributes": {
                                        "type": "object",
                                        "propertyNames": IDENTIFIER,
                                        "additionalProperties": attribute,
                                    },
                                },
                                ["attributes"],
                            ),
                        },
                    },
                    ["customer"],
                ),
                "channels": {"type": "array", "items": IDENTIFIER, "minItems": 1},
                "interaction_types": {"type": "array", "items": IDENTIFIER},
                "events": {
                    "type": "object",
                    "propertyNames": IDENTIFIER,
                    "additionalProperties": event,
                    "minProperties": 1,
                },
                "segments": {
                    "type": "array",
                    "minItems": 1,
                    "items": _obj(
                        {"name": IDENTIFIER, "when": EXPRESSION, "description": {"type": "string"}},
                        ["name"],
                    ),
                },
                "test_groups": _obj(
                    {
                        "salt": {"type": "string"},
                        "by_segment": {"type": "object", "additionalProperties": percentages},
                        "default": percentages,
                    },
                    ["salt"],
                ),
                "processes": {
                    "type": "object",
                    "propertyNames": IDENTIFIER,
                    "additionalProperties": process,
                },
                "mechanisms": {
                    "type": "object",
                    "propertyNames": IDENTIFIER,
                    "additionalProperties": mechanism,
                },
                "categories": _obj(
                    {
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": _obj({"name": IDENTIFIER, "when": EXPRESSION}, ["name"]),
                        },
                        "account_actions": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "category": IDENTIFIER,
                                    "account_type": IDENTIFIER,
                                    "when": EXPRESSION,
                                    "action": IDENTIFIER,
                                },
                                ["category", "account_type", "action"],
                            ),
                        },
                    },
                    ["rules"],
                ),
                "treatments": _obj(
                    {
                        "catalogue": {
                            "type": "object",
                            "propertyNames": IDENTIFIER,
                            "additionalProperties": treatment,
                            "minProperties": 1,
                        },
                        "groups": {
                            "type": "array",
                            "items": _obj(
                                {
                                    "scope": _obj(
                                        {
                                            "segment": IDENTIFIER,
                                            "interaction_type": IDENTIFIER,
                                            "channel": IDENTIFIER,
                                        }
                                    ),
                                    "description": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": _obj(
                                            {
                                                "treatment": IDENTIFIER,
                                                "when": EXPRESSION,
                                                "exclude": {"type": "boolean"},
                                            },
                                            ["treatment"],
                                        ),
                                    },
                                },
                                ["scope", "rules"],
                            ),
                        },
                    },
                    ["catalogue", "groups"],
                ),
                "policies": _obj(
                    {
                        "eligibility": {"type": "array", "items": policy_rule},
                        "suitability": {"type": "array", "items": policy_rule},
                        "contact": _obj(
                            {
                                "caps": {
                                    "type": "array",
                                    "items": _obj(
                                        {
                                            "channel": {"type": "string"},
                                            "max": {"type": "integer", "minimum": 0},
                                            "period_days": positive,
                                        },
                                        ["channel", "max", "period_days"],
                                    ),
                                },
                                "suppress_after_declines": _obj(
                                    {
                                        "declines": {"type": "integer", "minimum": 1},
                                        "within_days": positive,
                                    },
                                    ["declines", "within_days"],
                                ),
                            }
                        ),
                    }
                ),
                "arbitration": _obj(
                    {
                        "formula": EXPRESSION,
                        "levers": {"type": "object", "additionalProperties": {"type": "number"}},
                        "max_per_channel": {"type": "integer", "minimum": 1},
                    },
                    ["formula"],
                ),
                "golden_cases": {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": {"type": "string"},
                            "event": IDENTIFIER,
                            "channel": IDENTIFIER,
                            "interaction_type": IDENTIFIER,
                            "test_group": IDENTIFIER,
                            "customer": {"type": "object"},
                            "accounts": {"type": "array", "items": {"type": "object"}},
                            "contact_history": {"type": "array", "items": {"type": "object"}},
                            "model_versions": {"type": "object"},
                            "expect": _obj(
                                {
                                    "segment": {"type": ["string", "null"]},
                                    "test_group": {"type": ["string", "null"]},
                                    "category": {"type": ["string", "null"]},
                                    "attributes": {"type": "object"},
                                    "treatments": {
                                        "type": "object",
                                        "additionalProperties": {
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                    },
                                    "accounts": {
                                        "type": "object",
                                        "additionalProperties": {"type": "object"},
                                    },
                                }
                            ),
                        },
                        ["name", "event", "customer", "expect"],
                    ),
                },
            },
            ["strategy", "data_dictionary", "events", "segments", "processes", "mechanisms"],
        ),
    }


def write_schema(path: Path = SCHEMA_PATH) -> Path:
    """Regenerate the shipped JSON file from :func:`strategy_json_schema`."""
    path.write_text(json.dumps(strategy_json_schema(), indent=2, sort_keys=False) + "\n")
    return path


if __name__ == "__main__":
    print(write_schema())
