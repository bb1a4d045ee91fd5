"""JSON Schema of the strategy file format: its building blocks and the whole document.

``document_schema(kinds)`` assembles the schema from the mechanism kinds given (their
``SCHEMA_PROPERTIES``, ``SCHEMA_REQUIRED``, ``SCHEMA_DEFS``); the registry's schema and
the shipped ``strategy.schema.json`` are made in :mod:`cx_pipelines.engine.loading.schema`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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


def obj(properties: dict[str, Any], required: list[str] | None = None, **extra: Any) -> dict:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    schema.update(extra)
    return schema


def mechanism_variant(kind: str, properties: dict[str, Any], required: list[str]) -> dict:
    """The schema of one mechanism kind's keys (with the keys every mechanism has)."""
    common = {
        "type": {"const": kind},
        "description": {"type": "string"},
        "over": IDENTIFIER,
        "output": ATTRIBUTE_NAME,
    }
    return {
        "if": {"properties": {"type": {"const": kind}}, "required": ["type"]},
        "then": obj({**common, **properties}, ["type", "output", *required]),
    }


def document_schema(kinds: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a strategy file with these mechanism ``kinds``."""
    attribute = obj(
        {
            "type": {"enum": ["number", "string", "boolean", "date"]},
            "derived": {"type": "boolean"},
            "description": {"type": "string"},
        },
        ["type"],
    )
    definitions: dict[str, Any] = {}
    for kind in kinds.values():
        definitions.update(kind.SCHEMA_DEFS)
    mechanism = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"enum": list(kinds)}},
        "allOf": [
            mechanism_variant(name, kind.SCHEMA_PROPERTIES, kind.SCHEMA_REQUIRED)
            for name, kind in kinds.items()
        ],
    }
    process = obj(
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
            obj(
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
    treatment = obj(
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
    policy_rule = obj(
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
        "$defs": definitions,
        **obj(
            {
                "strategy": IDENTIFIER,
                "version": {"type": "integer"},
                "description": {"type": "string"},
                "data_dictionary": obj(
                    {
                        "customer": {
                            "type": "object",
                            "propertyNames": ATTRIBUTE_NAME,
                            "additionalProperties": attribute,
                        },
                        "accounts": {
                            "type": "object",
                            "propertyNames": IDENTIFIER,
                            "additionalProperties": obj(
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
                    "items": obj(
                        {"name": IDENTIFIER, "when": EXPRESSION, "description": {"type": "string"}},
                        ["name"],
                    ),
                },
                "test_groups": obj(
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
                "categories": obj(
                    {
                        "rules": {
                            "type": "array",
                            "minItems": 1,
                            "items": obj({"name": IDENTIFIER, "when": EXPRESSION}, ["name"]),
                        },
                        "account_actions": {
                            "type": "array",
                            "items": obj(
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
                "treatments": obj(
                    {
                        "catalogue": {
                            "type": "object",
                            "propertyNames": IDENTIFIER,
                            "additionalProperties": treatment,
                            "minProperties": 1,
                        },
                        "groups": {
                            "type": "array",
                            "items": obj(
                                {
                                    "scope": obj(
                                        {
                                            "segment": IDENTIFIER,
                                            "interaction_type": IDENTIFIER,
                                            "channel": IDENTIFIER,
                                        }
                                    ),
                                    "description": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": obj(
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
                "policies": obj(
                    {
                        "eligibility": {"type": "array", "items": policy_rule},
                        "suitability": {"type": "array", "items": policy_rule},
                        "contact": obj(
                            {
                                "caps": {
                                    "type": "array",
                                    "items": obj(
                                        {
                                            "channel": {"type": "string"},
                                            "max": {"type": "integer", "minimum": 0},
                                            "period_days": positive,
                                        },
                                        ["channel", "max", "period_days"],
                                    ),
                                },
                                "suppress_after_declines": obj(
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
                "arbitration": obj(
                    {
                        "formula": EXPRESSION,
                        "levers": {"type": "object", "additionalProperties": {"type": "number"}},
                        "max_per_channel": {"type": "integer", "minimum": 1},
                    },
                    ["formula"],
                ),
                "golden_cases": {
                    "type": "array",
                    "items": obj(
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
                            "expect": obj(
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
