"""Read a strategy YAML file keeping the line of every value, and check it against the schema.

``read_strategy_source`` returns the plain data plus a :class:`SourceMap` that turns a
path inside the document (``("mechanisms", "card_tree", "tree", 0, "when")``) into a
:class:`Location` with file, line, column and the dotted path an analyst can read.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cx_pipelines.engine.language.errors import Location, StrategyValidationError

PathKey = tuple[str | int, ...]
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(path: Sequence[str | int]) -> str:
    """``("a", "b.c", 0, "d")`` → ``a["b.c"][0].d``."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif _PLAIN_KEY.match(key):
            text += ("." if text else "") + key
        else:
            text += f'["{key}"]'
    return text


def split_path(text: str) -> PathKey:
    """Inverse of ``format_path`` for plain paths (``tree[1].else[0].then``)."""
    parts: list[str | int] = []
    for piece in text.replace("]", "").replace("[", ".").split("."):
        if piece:
            parts.append(int(piece) if piece.isdigit() else piece)
    return tuple(parts)


@dataclass
class SourceMap:
    """Line and column (1-based) of every node of a YAML document, by path."""

    file: str | None
    marks: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    # a scalar written on its key's (or item's) line: the column its text starts at, and
    # the text (so an expression's error column is placed only on the text written there)
    scalars: dict[PathKey, tuple[int, str]] = field(default_factory=dict)

    def location(self, path: Sequence[str | int]) -> Location:
        key = tuple(path)
        probe = key
        while probe not in self.marks and probe:
            probe = probe[:-1]
        line, column = self.marks.get(probe, (None, None))
        return Location(file=self.file, line=line, column=column, path=format_path(key) or None)

    def expression_location(self, path: Sequence[str | int], text: str) -> Location:
        """Where the expression ``text`` at ``path`` is written, its column the first
        character of the text when it stands there as written (plain or quoted, on the
        key's line), else no column (an error then counts characters inside ``text``)."""
        location = self.location(path)
        column, written = self.scalars.get(tuple(path), (None, None))
        return replace(location, column=column if written == text else None)


def _walk(node: yaml.Node, path: PathKey, source: SourceMap, key: yaml.Node | None = None) -> None:
    # a mapping entry is placed where its key is written, so nested blocks point at their key
    mark = (key or node).start_mark
    source.marks[path] = (mark.line + 1, mark.column + 1)
    one_line = node.start_mark.line == mark.line == node.end_mark.line
    if isinstance(node, yaml.ScalarNode) and node.style in (None, "", "'", '"') and one_line:
        quoted = node.style in ("'", '"')
        source.scalars[path] = (node.start_mark.column + 1 + quoted, str(node.value))
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                raise StrategyValidationError(
                    f"key {key!r} appears twice (first on line {seen[key]}); remove one",
                    location=Location(
                        file=source.file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        path=format_path((*path, key)),
                    ),
                    symbol=key,
                )
            seen[key] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), source, key_node)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source)


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, *, file: str | None) -> tuple[Any, SourceMap]:
    """Parse ``text``; a syntax error names the line and column where YAML gave up."""
    source = SourceMap(file=file)
    try:
        node = yaml.compose(text, Loader=_LOADER)
        data = None if node is None else yaml.constructor.SafeConstructor().construct_document(node)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        message = f"YAML syntax error: {problem}" + (f" ({context})" if context else "")
        raise StrategyValidationError(
            message,
            location=Location(
                file=file,
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            ),
        ) from error
    if node is None:
        raise StrategyValidationError("the strategy file is empty", location=Location(file=file))
    _walk(node, (), source)
    return data, source


def _allowed_properties(validator: jsonschema.Validator, schema_path: Sequence[Any]) -> list[str]:
    schema: Any = validator.schema
    for key in list(schema_path)[:-1]:
        schema = schema[key]
    return list(schema.get("properties", {}))


def _schema_error(
    error: jsonschema.ValidationError, source: SourceMap, validator: jsonschema.Validator
) -> StrategyValidationError:
    path = tuple(error.absolute_path)
    location = source.location(path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_properties(validator, error.absolute_schema_path)
        extra = [key for key in error.instance if key not in allowed]
        if extra:
            close = difflib.get_close_matches(extra[0], allowed, n=1)
            return StrategyValidationError(
                f"unknown key {extra[0]!r}; allowed here: {', '.join(allowed)}",
                location=source.location((*path, extra[0])),
                symbol=extra[0],
                suggestion=close[0] if close else None,
            )
    if error.validator == "required":
        return StrategyValidationError(error.message, location=location)
    if error.validator == "enum":
        close = difflib.get_close_matches(
            str(error.instance), [str(v) for v in error.validator_value], n=1
        )
        return StrategyValidationError(
            f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}",
            location=location,
            symbol=str(error.instance),
            suggestion=close[0] if close else None,
        )
    return StrategyValidationError(
        f"does not fit the strategy format: {error.message}", location=location
    )


_VAGUE = frozenset({"oneOf", "anyOf", "allOf", "if", "then"})


def schema_errors(
    data: Any, source: SourceMap, validator: jsonschema.Validator
) -> list[StrategyValidationError]:
    """Every schema violation, the most relevant first, each with its file and line."""
    if not isinstance(data, dict):
        return [
            StrategyValidationError(
                "a strategy file must be a mapping with keys like `strategy:` and `segments:`",
                location=source.location(()),
            )
        ]
    raw = [jsonschema.exceptions.best_match([error]) for error in validator.iter_errors(data)]
    specific = [e for e in raw if e.validator not in _VAGUE]
    # a vague "not valid under any of the given schemas" is dropped when a specific
    # error explains the same place
    kept = [
        e
        for e in raw
        if e.validator not in _VAGUE
        or not any(
            tuple(s.absolute_path)[: len(e.absolute_path)] == tuple(e.absolute_path)
            for s in specific
        )
    ]
    found = [_schema_error(error, source, validator) for error in kept]
    found.sort(key=lambda e: e.location.line or 0)
    return found


def read_strategy_source(
    path: str | Path, validator: jsonschema.Validator
) -> tuple[dict, SourceMap, str]:
    """Data, source map and raw text of a strategy file; raises on YAML or schema errors
    (``validator``: the strategy schema's, see ``loading.schema``)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise StrategyValidationError(
            f"cannot read strategy file: {error.strerror}", location=Location(file=file)
        ) from error
    data, source = parse_yaml(text, file=file)
    errors = schema_errors(data, source, validator)
    if errors:
        first = errors[0]
        first.others = errors[1:]  # type: ignore[attr-defined]
        raise first
    return data, source, text
