"""What both evaluators (and the mechanism kinds) share so they cannot drift: values,
conditions, test groups, routing, treatment rules, trace reasons."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from typing import Any

import numpy as np
import pandas as pd

from cx_pipelines.engine.language import model as m
from cx_pipelines.engine.language.errors import EngineError, EvaluationError
from cx_pipelines.engine.language.expressions import ValueType


# ---------------------------------------------------------------- values
def canonical(value: Any, value_type: ValueType) -> Any:
    """One customer/account value in its per-record form: float, str, bool, date or None."""
    if value is None:
        return None
    kind = type(value)
    if kind is float and value_type is ValueType.NUMBER:
        return value if value == value else None
    if kind is str and value_type is ValueType.STRING:
        return value
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    if value_type is ValueType.NUMBER:
        if isinstance(value, bool | np.bool_):
            return float(value)
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise EvaluationError(f"{value!r} is not a number") from None
        return None if math.isnan(number) else number
    if value_type is ValueType.BOOLEAN:
        if isinstance(value, float | np.floating) and math.isnan(value):
            return None
        if isinstance(value, bool | np.bool_ | int | np.integer | float | np.floating):
            return bool(value)
        raise EvaluationError(f"{value!r} is not a boolean")
    if value_type is ValueType.DATE:
        if isinstance(value, np.datetime64):
            return None if np.isnat(value) else value.astype("datetime64[D]").item()
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        raise EvaluationError(f"{value!r} is not a date")
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def canonical_list(array: np.ndarray, value_type: ValueType) -> list[Any]:
    """A batch column as a list of per-record values."""
    if value_type is ValueType.NUMBER:
        numbers = np.asarray(array, dtype=np.float64)
        missing = np.isnan(numbers)
        if not missing.any():
            return numbers.tolist()
        values = numbers.astype(object)  # the same floats, None where NaN
        values[missing] = None
        return values.tolist()
    if value_type is ValueType.BOOLEAN:
        array = np.asarray(array)
        if array.dtype == bool:
            return array.tolist()
        return [canonical(v, value_type) for v in array.tolist()]
    if value_type is ValueType.DATE:
        return [None if v is None else v for v in np.asarray(array, dtype="datetime64[D]").tolist()]
    return [canonical(v, value_type) for v in array.tolist()]


def json_value(value: Any) -> Any:
    """A value as it appears in a trace (dates as ISO text, NaN as null)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def trace_json(trace: dict) -> str:
    return json.dumps(trace, separators=(",", ":"), sort_keys=True, default=str)


def customer_key(customer_id: Any) -> str:
    """The text a customer id is hashed as (integral floats read as integers)."""
    if isinstance(customer_id, float | np.floating) and float(customer_id).is_integer():
        return str(int(customer_id))
    if isinstance(customer_id, np.integer):
        return str(int(customer_id))
    return str(customer_id)


# ---------------------------------------------------------------- conditions
RECORD_FAILURES = (KeyError, EngineError)
"""What a prepared per-record form catches to re-run its reference form (for the error text)."""


def true(expression: m.Expression | None, record: Any) -> bool:
    """A condition holds for one record (no condition always holds)."""
    return expression is None or expression.compiled.evaluate_record(record) is True


def record_function(expression: m.Expression | None):
    """The raw compiled per-record function of an expression (None stays None)."""
    return None if expression is None else expression.compiled.record_function


# ---------------------------------------------------------------- test groups
_MASK = (1 << 64) - 1
_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_SCALE = 100.0 / 9007199254740992.0  # 100 / 2**53


@functools.lru_cache(maxsize=256)
def _salt_seed(salt: str) -> int:
    salt_hash = int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "big")
    return _FNV_OFFSET ^ salt_hash


def _mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def test_group_draw(salt: str, customer_id: Any) -> float:
    """Uniform in [0, 100) from the salt and the customer id; stable across runs and machines.

    FNV-1a (64 bit) over the UTF-8 bytes of the id, seeded with blake2b(salt), mixed with
    splitmix64; the top 53 bits scaled to [0, 100). ``draws`` computes the same for arrays.
    """
    h = _salt_seed(salt)
    for byte in customer_key(customer_id).encode("utf-8"):
        h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return (_mix(h) >> 11) * _SCALE


def arrow_text(customer_ids: Any):
    """Customer ids as an arrow string array of their keys (see ``customer_key``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(customer_ids, pa.ChunkedArray):
        customer_ids = (
            customer_ids.combine_chunks()
            if customer_ids.num_chunks
            else pa.array([], pa.large_string())
        )
    if isinstance(customer_ids, pa.Array):
        return (
            customer_ids
            if customer_ids.type == pa.large_string()
            else customer_ids.cast(pa.large_string())
        )

    if isinstance(customer_ids, pd.Series | pd.Index):
        values = customer_ids.array
        if isinstance(values, pd.arrays.ArrowStringArray) or str(customer_ids.dtype) in (
            "str",
            "string",
        ):
            return pa.array(customer_ids)
        customer_ids = customer_ids.to_numpy()
    ids = np.asarray(customer_ids)
    if ids.dtype.kind == "f" and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)):
        ids = ids.astype(np.int64)
    if ids.dtype.kind in "iu":
        return pc.cast(pa.array(ids), pa.large_string())
    if ids.dtype.kind == "U" or (
        ids.dtype == object and pd.api.types.infer_dtype(ids, skipna=True) == "string"
    ):
        return pa.array(ids, type=pa.large_string(), from_pandas=True)
    return pa.array(
        [None if v is None else customer_key(v) for v in ids.tolist()], type=pa.large_string()
    )


def fingerprints(customer_ids: Any, salt: str) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised ``test_group_draw`` hashes of many ids, plus a second independent hash.

    Returns ``(fingerprint, check)`` (uint64 each): the first is the one the draw uses,
    the second (another seed) makes equal pairs a safe stand-in for equal ids. Null ids
    get fingerprint 0 and check 0. Works on the UTF-8 buffers directly (no Python objects).
    """
    import pyarrow as pa

    text = arrow_text(customer_ids)
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks() if text.num_chunks else pa.array([], type=pa.large_string())
    if text.type != pa.large_string():
        text = text.cast(pa.large_string())
    size = len(text)
    buffers = text.buffers()
    offsets = (
        np.frombuffer(buffers[1], dtype=np.int64)[text.offset : text.offset + size + 1]
        if size
        else np.zeros(1, np.int64)
    )
    data = (
        np.frombuffer(buffers[2], dtype=np.uint8)
        if size and buffers[2] is not None
        else np.zeros(1, np.uint8)
    )
    if len(data) == 0:
        data = np.zeros(1, np.uint8)
    starts = offsets[:-1]
    lengths = np.diff(offsets)
    prime = np.uint64(_FNV_PRIME)
    first = np.full(size, _salt_seed(salt), dtype=np.uint64)
    second = np.full(size, _salt_seed(salt + "\x00check"), dtype=np.uint64)
    longest = int(lengths.max()) if size else 0
    uniform = size > 0 and int(lengths.min()) == longest
    for position in range(longest):
        byte = data[np.minimum(starts + position, len(data) - 1)].astype(np.uint64)
        if uniform:  # every id has this byte (fixed-width ids): no masking
            first = (first ^ byte) * prime
            second = (second ^ byte) * prime
            continue
        active = lengths > position
        first = np.where(active, (first ^ byte) * prime, first)
        second = np.where(active, (second ^ byte) * prime, second)
    result = []
    for h in (first, second):
        h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        h = h ^ (h >> np.uint64(31))
        if text.null_count:
            h[np.asarray(text.is_null())] = 0
        result.append(h)
    return result[0], result[1]


def draws_of(fingerprint: np.ndarray) -> np.ndarray:
    """Test-group draws in [0, 100) from fingerprints."""
    return (fingerprint >> np.uint64(11)).astype(np.float64) * _SCALE


def cumulative(groups: list[tuple[str, float]]) -> list[tuple[str, float]]:
    total = 0.0
    result = []
    for name, percent in groups:
        total += percent
        result.append((name, total))
    return result


def assign_group(groups: list[tuple[str, float]], draw: float) -> str:
    bounds = cumulative(groups)
    for name, upper in bounds:
        if draw < upper:
            return name
    return bounds[-1][0]


# ---------------------------------------------------------------- processes
def process_mechanisms(process: m.Process, test_group: str | None) -> list[str]:
    if process.by_test_group is None:
        return process.mechanisms
    table = process.by_test_group
    return table.get(test_group or "", table.get("default", []))


def event_models(
    strategy: m.Strategy, event: m.Event, model_versions: dict | None
) -> dict[str, str]:
    """Model name → version for every model score the event can run."""
    key = ("models", event.name, tuple(sorted((model_versions or {}).items())))
    cached = strategy.cache.get(key)
    if cached is None:
        cached = strategy.cache[key] = _event_models(strategy, event, model_versions)
    return dict(cached)


def _event_models(
    strategy: m.Strategy, event: m.Event, model_versions: dict | None
) -> dict[str, str]:
    models: dict[str, str] = {}
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        mechanism = strategy.mechanisms[name]
        models.update(mechanism.models(model_versions))
        for target, _ in mechanism.call_sites():
            visit(target)

    for process_name in event.processes:
        process = strategy.processes[process_name]
        names = list(process.mechanisms)
        for group_names in (process.by_test_group or {}).values():
            names += group_names
        for name in names:
            visit(name)
    return dict(sorted(models.items()))


def event_of(strategy: m.Strategy, event: str) -> m.Event:
    """The event called ``event``; an evaluation error naming the known ones otherwise."""
    if event not in strategy.events:
        raise EvaluationError(
            f"strategy {strategy.name!r} has no event {event!r}; "
            f"known: {', '.join(strategy.events)}",
            symbol=event,
        )
    return strategy.events[event]


def channels_of(strategy: m.Strategy, channel: str | None) -> list[str]:
    """Every channel of the strategy, or the one asked for (which must be declared)."""
    if channel is None:
        return list(strategy.channels)
    if channel not in strategy.channels:
        raise EvaluationError(
            f"strategy {strategy.name!r} has no channel {channel!r}; "
            f"known: {', '.join(strategy.channels)}",
            symbol=channel,
        )
    return [channel]


# ---------------------------------------------------------------- treatments
def deciding_rules(
    strategy: m.Strategy, segment: str | None, interaction_type: str | None, channel: str
) -> dict[str, m.TreatmentRule]:
    """For each treatment, the rule of the most specific matching group that names it."""
    return _deciding_rules(id(strategy), strategy, segment, interaction_type, channel)


_RULE_CACHE: dict[tuple, dict[str, m.TreatmentRule]] = {}


def _deciding_rules(sid, strategy, segment, interaction_type, channel):
    key = (sid, strategy.content_hash, segment, interaction_type, channel)
    cached = _RULE_CACHE.get(key)
    if cached is not None:
        return cached
    matching = [
        group
        for group in strategy.rule_groups
        if group.segment in (None, segment)
        and group.interaction_type in (None, interaction_type)
        and group.channel in (None, channel)
    ]
    matching.sort(key=lambda g: g.specificity)
    decided: dict[str, m.TreatmentRule] = {}
    for group in matching:  # later (more specific) groups overwrite earlier ones
        for rule in group.rules:
            decided[rule.treatment] = rule
    ordered = {name: decided[name] for name in strategy.treatments if name in decided}
    if len(_RULE_CACHE) > 10000:
        _RULE_CACHE.clear()
    _RULE_CACHE[key] = ordered
    return ordered


def cap_reason(cap: m.ContactCap) -> str:
    return f"contact cap: at most {cap.max} {cap.channel} contacts in {cap.period_days:g} days"


def decline_reason(limit: tuple[int, float]) -> str:
    return f"declined {limit[0]} times within {limit[1]:g} days"


SCORE_MISSING = "score_missing"
