"""Property tests: batch and per-record forms agree; the parser only ever raises EngineError."""

from __future__ import annotations

import functools
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cx_pipelines.engine.language.errors import EngineError
from cx_pipelines.engine.language.expressions import ValueType, compile_expression
from cx_pipelines.engine.language.expressions import batch as batch_module
from cx_pipelines.engine.language.expressions.record import compile_record

N, S, B, D = ValueType.NUMBER, ValueType.STRING, ValueType.BOOLEAN, ValueType.DATE
ATTRIBUTES = {
    N: ["n1", "n2", "acct.n3"],
    S: ["s1", "s2"],
    B: ["b1", "b2"],
    D: ["d1", "d2"],
}
TYPES = {name: value_type for value_type, names in ATTRIBUTES.items() for name in names}

NUMBER_LITERALS = ["0", "1", "2.5", "-3", "7", "100", "0.1", "1e300", "-0.5", "3.14159", "null"]
STRING_LITERALS = ["'a'", "'B'", "''", "'gold'", "'ß'", '"İx"', "null"]
DATE_LITERALS = ["date'2024-02-29'", "date'2025-01-01'", "date'1999-12-31'", "null"]
BOOLEAN_LITERALS = ["true", "false", "null"]
LITERALS = {N: NUMBER_LITERALS, S: STRING_LITERALS, D: DATE_LITERALS, B: BOOLEAN_LITERALS}
ORDERED = [N, S, D]


@functools.cache
def leaf(value_type: ValueType) -> st.SearchStrategy[str]:
    return st.sampled_from(ATTRIBUTES[value_type]) | st.sampled_from(LITERALS[value_type])


def bound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A range bound: empty (open) or a parenthesised expression."""
    return st.just("") | inner.map(lambda text: f"({text})")


@functools.cache
def expression(value_type: ValueType, depth: int) -> st.SearchStrategy[str]:
    """Random well-typed expression text of ``value_type``, nested at most ``depth``."""
    if depth == 0:
        return leaf(value_type)

    def sub(inner: ValueType) -> st.SearchStrategy[str]:
        return expression(inner, depth - 1)

    shared = [
        st.builds(lambda c, a, b: f"if({c}, {a}, {b})", sub(B), sub(value_type), sub(value_type)),
        st.lists(sub(value_type), min_size=2, max_size=3).map(
            lambda items: f"coalesce({', '.join(items)})"
        ),
    ]
    options: list[st.SearchStrategy[str]] = [leaf(value_type), *shared]
    if value_type is N:
        options += [
            st.builds(
                lambda a, op, b: f"({a} {op} {b})",
                sub(N),
                st.sampled_from("+-*/%"),
                sub(N),
            ),
            sub(N).map(lambda a: f"-({a})"),
            sub(N).map(lambda a: f"abs({a})"),
            st.builds(lambda a, n: f"round({a}, {n})", sub(N), st.integers(-3, 4)),
            sub(N).map(lambda a: f"round({a})"),
            st.builds(
                lambda name, items: f"{name}({', '.join(items)})",
                st.sampled_from(["min", "max"]),
                st.lists(sub(N), min_size=2, max_size=3),
            ),
            sub(S).map(lambda s: f"len({s})"),
            st.builds(lambda a, b: f"days_between({a}, {b})", sub(D), sub(D)),
        ]
    elif value_type is S:
        options += [
            st.builds(lambda f, s: f"{f}({s})", st.sampled_from(["lower", "upper"]), sub(S))
        ]
    elif value_type is D:
        options += [
            st.builds(
                lambda name, a, b: f"{name}({a}, {b})",
                st.sampled_from(["min", "max"]),
                sub(D),
                sub(D),
            )
        ]
    else:
        options += [
            st.builds(
                lambda a, op, b: f"({a} {op} {b})", sub(B), st.sampled_from(["and", "or"]), sub(B)
            ),
            sub(B).map(lambda a: f"not ({a})"),
            st.sampled_from([N, S, D, B]).flatmap(
                lambda inner: st.builds(
                    lambda a, op, b: f"(({a}) {op} ({b}))",
                    sub(inner),
                    st.sampled_from(
                        ["==", "!="] if inner is B else ["==", "!=", "<", "<=", ">", ">="]
                    ),
                    sub(inner),
                )
            ),
            st.sampled_from([N, S, D, B]).flatmap(
                lambda inner: st.builds(
                    lambda a, negated, items: f"(({a}) {negated}in [{', '.join(items)}])",
                    sub(inner),
                    st.sampled_from(["", "not "]),
                    st.lists(
                        sub(inner).filter(lambda text: text != "null"), min_size=1, max_size=3
                    ),
                )
            ),
            st.sampled_from(ORDERED).flatmap(
                lambda inner: st.builds(
                    lambda a, negated, bounds: f"(({a}) {negated}in {bounds[0]}..{bounds[1]})",
                    sub(inner),
                    st.sampled_from(["", "not "]),
                    st.tuples(bound(sub(inner)), bound(sub(inner))).filter(any),
                )
            ),
            st.builds(
                lambda a, negated: f"(({a}) is {negated}null)",
                st.sampled_from([N, S, D, B]).flatmap(sub),
                st.sampled_from(["", "not "]),
            ),
        ]
    return st.one_of(options)


NUMBER_POOL = [0.0, -0.0, 1.0, -1.0, 2.5, -7.25, 100.0, 1e-300, 1e300, np.inf, np.nan, np.nan]
STRING_POOL = ["a", "B", "", "gold", "Gold", "ß", "İx", None, None]
DATE_POOL = ["2024-02-29", "2025-01-01", "1999-12-31", "2026-09-30", "NaT", "NaT"]


@st.composite
def populations(draw) -> tuple[dict[str, np.ndarray], int]:
    size = draw(st.integers(min_value=1, max_value=8))

    def column(pool):
        return [draw(st.sampled_from(pool)) for _ in range(size)]

    columns: dict[str, np.ndarray] = {}
    for name in ATTRIBUTES[N]:
        columns[name] = np.array(column(NUMBER_POOL), dtype=np.float64)
    for name in ATTRIBUTES[S]:
        columns[name] = np.array(column(STRING_POOL), dtype=object)
    for name in ATTRIBUTES[D]:
        columns[name] = np.array(column(DATE_POOL), dtype="datetime64[D]")
    nullable = draw(st.booleans())
    for name in ATTRIBUTES[B]:
        if nullable:  # float 1.0/0.0/NaN is the nullable boolean encoding
            columns[name] = np.array(column([1.0, 0.0, np.nan]), dtype=np.float64)
        else:
            columns[name] = np.array(column([True, False]), dtype=bool)
    return columns, size


def _same(batch_value, record_value, value_type: ValueType) -> bool:
    if value_type is N:
        if np.isnan(batch_value):
            return record_value is None
        return type(record_value) is float and (record_value == batch_value)
    if value_type is D:
        if np.isnat(batch_value):
            return record_value is None
        return batch_value.astype("datetime64[D]").item() == record_value
    if value_type is B:
        return type(record_value) is bool and bool(batch_value) == record_value
    return batch_value == record_value and type(batch_value) is type(record_value)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=st.sampled_from([N, S, B, D]).flatmap(lambda value_type: expression(value_type, 3)),
    population=populations(),
)
def test_batch_and_record_forms_agree(text: str, population) -> None:
    columns, size = population
    try:
        compiled = compile_expression(text, attribute_types=TYPES)
    except EngineError as error:  # e.g. an all-null branch; must be a type, never a crash
        assert "null" in error.message or "mixes" in error.message, (text, error)
        return
    by_category = compiled.evaluate_batch(columns, size)
    with (
        mock.patch.object(batch_module, "MIN_CATEGORIES", 0),
        mock.patch.object(batch_module, "CATEGORY_SHARE", 0.0),
    ):
        by_object = compiled.evaluate_batch(columns, size)
    for batch in (by_category, by_object):
        assert batch.shape == (size,)
    reference = compile_record(compiled.tree)  # closures: the reference semantics
    for index in range(size):
        record = {name: column[index] for name, column in columns.items()}
        value = compiled.evaluate_record(record)  # generated code
        expected = reference(record)
        if compiled.result_type is B:
            expected = expected is True
        assert value == expected or (value is None and expected is None), (text, record)
        assert type(value) is type(expected), (text, record, value, expected)
        for batch in (by_category, by_object):
            assert _same(batch[index], value, compiled.result_type), (
                text,
                index,
                record,
                batch[index],
                value,
            )


TOKENS = [
    "n1", "s1", "b1", "d1", "acct.n3", "unknown", "x.", ".y", "1", "2.5", "1e5", "-", "+",
    "*", "/", "%", "(", ")", "[", "]", ",", "..", ".", "==", "=", "!=", "<", "<=", ">", ">=",
    "and", "or", "not", "in", "is", "null", "true", "false", "'a'", '"b"', "'", '"',
    "date'2025-01-01'", "date'2025-13-01'", "date", "if", "min", "max", "abs", "round",
    "coalesce", "lower", "upper", "len", "days_between", "if(", "round(", "\\", "&", "|", "#",
    "é", "\x00", "\n", "1..", "..1", "9" * 400, "--", "((", "))",
]  # fmt: skip


def _compile_only_engine_errors(text: str) -> None:
    try:
        compiled = compile_expression(text, attribute_types=TYPES)
    except EngineError as error:  # and it points inside the text
        assert 1 <= error.location.column <= len(text) + 1, (text, error)
        return
    # what compiles must also evaluate, in both forms, without an unexpected error
    columns = {
        **{name: np.array([1.0, np.nan]) for name in ATTRIBUTES[N]},
        **{name: np.array(["a", None], dtype=object) for name in ATTRIBUTES[S]},
        **{name: np.array([True, False]) for name in ATTRIBUTES[B]},
        **{name: np.array(["2025-01-01", "NaT"], dtype="datetime64[D]") for name in ATTRIBUTES[D]},
    }
    batch = compiled.evaluate_batch(columns, 2)
    assert batch.shape == (2,)
    for index in range(2):
        compiled.evaluate_record({name: column[index] for name, column in columns.items()})


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=60))
def test_random_text_only_raises_engine_errors(text: str) -> None:
    _compile_only_engine_errors(text)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", ""]))
def test_token_soup_only_raises_engine_errors(tokens: list[str], separator: str) -> None:
    _compile_only_engine_errors(separator.join(tokens))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(min_value=1, max_value=3000),
    st.sampled_from(["(", "-", "not ", "abs(", "[", "if("]),
)
def test_deep_nesting_only_raises_engine_errors(depth: int, opener: str) -> None:
    _compile_only_engine_errors(opener * depth + "1")
    _compile_only_engine_errors("(" * depth + "n1" + ")" * depth)


def test_non_text_is_a_syntax_error() -> None:
    for value in (None, 5, b"n1 > 1"):
        try:
            compile_expression(value, attribute_types=TYPES)  # type: ignore[arg-type]
        except EngineError:
            continue
        raise AssertionError(f"{value!r} compiled")


def test_generated_expressions_cover_every_kind() -> None:
    """The generator really produces the constructs the agreement test relies on."""
    seen: set[str] = set()

    @settings(max_examples=100, deadline=None, database=None, derandomize=True)
    @given(st.sampled_from([N, S, B, D]).flatmap(lambda value_type: expression(value_type, 3)))
    def collect(text: str) -> None:
        seen.update(
            word
            for word in ("coalesce", "if(", "round", " in ", "..", "is ", "days_between")
            if word in text
        )

    collect()
    assert {"coalesce", "if(", " in ", "is "} <= seen
