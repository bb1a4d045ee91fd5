"""Unit tests of the expression language: every operator and function in both forms."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from cx_pipelines.engine.language.errors import (
    EngineError,
    EvaluationError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    Location,
    UnknownAttributeError,
)
from cx_pipelines.engine.language.expressions import (
    CompiledExpression,
    ValueType,
    compile_expression,
    prepare_columns,
)
from cx_pipelines.engine.language.expressions.codegen import generate_source

N, S, B, D = ValueType.NUMBER, ValueType.STRING, ValueType.BOOLEAN, ValueType.DATE

TYPES = {
    "balance": N,
    "limit": N,
    "risk_score": N,
    "segment": S,
    "name": S,
    "active": B,
    "opened": D,
    "closed": D,
    "credit_card.balance": N,
    "scores.propensity_credit_card": N,
}

# four customers; the second one has every attribute null
COLUMNS = {
    "balance": np.array([600.0, np.nan, 0.0, -25.5]),
    "limit": np.array([1000.0, 500.0, 0.0, np.nan]),
    "risk_score": np.array([401.0, np.nan, 600.0, 601.0]),
    "segment": np.array(["Gold", None, "silver", "gold"], dtype=object),
    "name": np.array(["Ann", None, "", "Bo"], dtype=object),
    "active": np.array([1.0, np.nan, 0.0, 1.0]),
    "opened": np.array(["2025-01-31", "NaT", "2024-12-01", "2026-09-30"], dtype="datetime64[D]"),
    "closed": np.array(["2025-03-01", "2025-01-01", "NaT", "2026-09-30"], dtype="datetime64[D]"),
    "credit_card.balance": np.array([10.0, 20.0, np.nan, 40.0]),
    "scores.propensity_credit_card": np.array([0.1, 0.5, 0.9, np.nan]),
}
SIZE = 4


def _record(index: int) -> dict:
    return {name: column[index] for name, column in COLUMNS.items()}


def _python(value, value_type: ValueType):
    """A batch cell in per-record form (None for null)."""
    if value_type is N:
        return None if np.isnan(value) else float(value)
    if value_type is D:
        return None if np.isnat(value) else value.astype("datetime64[D]").item()
    if value_type is B:
        return bool(value)
    return value


def both(text: str, **options) -> list:
    """Evaluate ``text`` in both forms over COLUMNS, check they agree, return the values."""
    expression = compile_expression(text, attribute_types=TYPES, **options)
    batch = expression.evaluate_batch(COLUMNS, SIZE)
    assert batch.shape == (SIZE,)
    from_batch = [_python(value, expression.result_type) for value in batch]
    per_record = [expression.evaluate_record(_record(index)) for index in range(SIZE)]
    assert from_batch == per_record, (text, from_batch, per_record)
    return per_record


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("balance + limit", [1600.0, None, 0.0, None]),
        ("balance - 100", [500.0, None, -100.0, -125.5]),
        ("balance * 2", [1200.0, None, 0.0, -51.0]),
        ("balance / limit", [0.6, None, None, None]),  # x/0 is null
        ("balance % 7", [600.0 % 7, None, 0.0, -25.5 % 7]),
        ("limit % 0", [None, None, None, None]),
        ("-balance", [-600.0, None, -0.0, 25.5]),
        ("2 + 3 * 4 - 10 / 5", [12.0] * 4),
        ("(2 + 3) * 4", [20.0] * 4),
        ("abs(balance)", [600.0, None, 0.0, 25.5]),
        ("round(balance / 7, 2)", [85.71, None, 0.0, -3.64]),
        ("round(balance, -2)", [600.0, None, 0.0, -0.0]),
        ("round(2.5)", [2.0] * 4),
        ("min(balance, limit)", [600.0, None, 0.0, None]),
        ("max(balance, limit, 700)", [1000.0, None, 700.0, None]),
        ("coalesce(balance, limit, 1)", [600.0, 500.0, 0.0, -25.5]),
        ("if(balance > 100, 1, 2)", [1.0, 2.0, 2.0, 2.0]),
        ("len(name)", [3.0, None, 0.0, 2.0]),
        ("days_between(opened, closed)", [29.0, None, None, 0.0]),
        ("credit_card.balance + scores.propensity_credit_card", [10.1, 20.5, None, None]),
        ("null + 1", [None] * 4),
    ],
)
def test_number_operators_and_functions(text: str, expected: list) -> None:
    values = both(text)
    assert len(values) == len(expected)
    for value, wanted in zip(values, expected, strict=True):
        if wanted is None:
            assert value is None
        else:
            assert value == pytest.approx(wanted)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("balance > 500", [True, False, False, False]),
        ("balance >= 0", [True, False, True, False]),
        ("balance < 0", [False, False, False, True]),
        ("balance <= 0", [False, False, True, True]),
        ("balance == 0", [False, False, True, False]),
        ("balance != 0", [True, False, False, True]),  # null compares false, even !=
        ("balance != limit", [True, False, False, False]),
        ("segment == 'gold'", [False, False, False, True]),
        ('segment != "gold"', [True, False, True, False]),
        ("segment < 'h'", [True, False, False, True]),
        ("lower(segment) == 'gold'", [True, False, False, True]),
        ("upper(segment) == 'SILVER'", [False, False, True, False]),
        ("opened < closed", [True, False, False, False]),
        ("opened >= date'2025-01-31'", [True, False, False, True]),
        ("active", [True, False, False, True]),
        ("active == false", [False, False, True, False]),
        ("not active", [False, True, True, False]),  # null reads as false
        ("active and balance > 0", [True, False, False, False]),
        ("active or balance == 0", [True, False, True, True]),
        ("not (balance > 500 or segment == 'gold')", [False, True, True, False]),
        ("balance > 500 and risk_score in 401..600", [True, False, False, False]),
        ("risk_score in 401..600", [True, False, True, False]),
        ("risk_score in ..500", [True, False, False, False]),
        ("risk_score in 501..", [False, False, True, True]),
        ("risk_score not in 401..600", [False, False, False, True]),
        ("segment in ['gold', 'silver']", [False, False, True, True]),
        ("segment not in ['gold', 'silver']", [True, False, False, False]),
        ("balance in [0, 600]", [True, False, True, False]),
        ("balance not in [0, -1]", [True, False, False, True]),
        ("balance in [limit, 0]", [False, False, True, False]),
        ("opened in date'2025-01-01'..date'2025-12-31'", [True, False, False, False]),
        ("segment in 'a'..'h'", [False, False, False, True]),
        ("balance is null", [False, True, False, False]),
        ("balance is not null", [True, False, True, True]),
        ("active is null", [False, True, False, False]),
        ("segment is null", [False, True, False, False]),
        ("opened is not null", [True, False, True, True]),
        ("coalesce(active, true)", [True, True, False, True]),
        ("if(active, balance > 0, true)", [True, True, True, False]),
        ("1 < 2", [True] * 4),
        ("not null", [True] * 4),
    ],
)
def test_boolean_operators(text: str, expected: list) -> None:
    assert both(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lower(segment)", ["gold", None, "silver", "gold"]),
        ("upper(name)", ["ANN", None, "", "BO"]),
        ("coalesce(segment, 'none')", ["Gold", "none", "silver", "gold"]),
        ("if(balance > 0, 'in credit', 'other')", ["in credit", "other", "other", "other"]),
        ("if(balance > 0, name, null)", ["Ann", None, None, None]),
        ("'it''s'", None),
    ],
)
def test_string_results(text: str, expected: list | None) -> None:
    if expected is None:
        with pytest.raises(ExpressionSyntaxError):
            compile_expression(text, attribute_types=TYPES)
        return
    assert both(text) == expected


def test_escaped_quotes_and_both_quote_styles() -> None:
    assert both(r"'it\'s'") == ["it's"] * 4
    assert both('"say \\"hi\\""') == ['say "hi"'] * 4


def test_date_results() -> None:
    assert both("max(opened, closed)") == [dt.date(2025, 3, 1), None, None, dt.date(2026, 9, 30)]
    assert both("min(opened, date'2025-01-01')") == [
        dt.date(2025, 1, 1),
        None,
        dt.date(2024, 12, 1),
        dt.date(2025, 1, 1),
    ]
    assert both("coalesce(closed, opened)") == [
        dt.date(2025, 3, 1),
        dt.date(2025, 1, 1),
        dt.date(2024, 12, 1),
        dt.date(2026, 9, 30),
    ]


def test_compiled_expression_describes_itself() -> None:
    expression = compile_expression(
        "balance > 500 and risk_score in 401..600 and segment is not null",
        attribute_types=TYPES,
        expected_type=B,
    )
    assert isinstance(expression, CompiledExpression)
    assert expression.result_type is B
    assert expression.attributes == frozenset({"balance", "risk_score", "segment"})
    assert expression.text.startswith("balance > 500")
    batch = expression.evaluate_batch(COLUMNS, SIZE)
    assert batch.dtype == bool


def test_result_arrays_are_independent_of_the_input() -> None:
    expression = compile_expression("balance", attribute_types=TYPES)
    result = expression.evaluate_batch(COLUMNS, SIZE)
    result[0] = 1.0
    assert COLUMNS["balance"][0] == 600.0


def test_constant_expressions_fill_the_whole_population() -> None:
    expression = compile_expression("1 + 2", attribute_types=TYPES)
    assert expression.evaluate_batch({}, 3).tolist() == [3.0, 3.0, 3.0]
    assert expression.evaluate_record({}) == 3.0
    assert compile_expression("'x'", attribute_types={}).evaluate_batch({}, 2).tolist() == [
        "x",
        "x",
    ]


def test_record_reads_every_spelling_of_null_and_number() -> None:
    expression = compile_expression("coalesce(balance, -1) + 1", attribute_types=TYPES)
    assert expression.evaluate_record({"balance": None}) == 0.0
    assert expression.evaluate_record({"balance": float("nan")}) == 0.0
    assert expression.evaluate_record({"balance": np.float32("nan")}) == 0.0
    assert expression.evaluate_record({"balance": 4}) == 5.0
    assert expression.evaluate_record({"balance": np.int64(4)}) == 5.0
    dates = compile_expression("days_between(opened, date'2026-01-02')", attribute_types=TYPES)
    assert dates.evaluate_record({"opened": dt.datetime(2026, 1, 1, 23, 59)}) == 1.0
    assert dates.evaluate_record({"opened": np.datetime64("2026-01-01T12:00")}) == 1.0
    assert dates.evaluate_record({"opened": np.datetime64("NaT")}) is None


def test_batch_accepts_common_column_encodings() -> None:
    expression = compile_expression(
        "balance > 1 and segment == 'a' and active and opened > date'2020-01-01'",
        attribute_types=TYPES,
    )
    columns = {
        "balance": [2, 3, None],
        "segment": np.array(["a", "a", "a"]),  # fixed-width unicode
        "active": np.array([True, None, True], dtype=object),
        "opened": np.array([dt.date(2021, 1, 1), dt.datetime(2022, 1, 1, 5), None], dtype=object),
    }
    assert expression.evaluate_batch(columns, 3).tolist() == [True, False, False]
    strings = compile_expression("segment is null", attribute_types=TYPES)
    nan_strings = {"segment": np.array(["a", np.nan, None], dtype=object)}
    assert strings.evaluate_batch(nan_strings, 3).tolist() == [False, True, True]


def test_non_numeric_record_value_is_an_evaluation_error() -> None:
    expression = compile_expression("balance > 1", attribute_types=TYPES)
    with pytest.raises(EvaluationError, match="balance"):
        expression.evaluate_record({"balance": "lots"})


def test_missing_attribute_is_an_evaluation_error_in_both_forms() -> None:
    location = Location(file="strategies/demo.yaml", line=12, path="segments.gold")
    expression = compile_expression("balance > 1", attribute_types=TYPES, location=location)
    with pytest.raises(EvaluationError, match="balance") as raised:
        expression.evaluate_record({})
    assert raised.value.location.file == "strategies/demo.yaml"
    with pytest.raises(EvaluationError, match="no column 'balance'") as raised:
        expression.evaluate_batch({}, 2)
    assert raised.value.location.line == 12
    with pytest.raises(EvaluationError, match="shape"):
        expression.evaluate_batch({"balance": np.zeros(3)}, 2)


@pytest.mark.parametrize(
    ("text", "error_type", "fragment", "column"),
    [
        ("balance >", ExpressionSyntaxError, "ends too early", 10),
        ("balance = 5", ExpressionSyntaxError, "use '=='", 9),
        ("balance > 5 && limit", ExpressionSyntaxError, "'and'", 13),
        ("(balance > 5", ExpressionSyntaxError, "expected ')'", 13),
        ("1 < balance < 5", ExpressionSyntaxError, "cannot be chained", 13),
        ("'open", ExpressionSyntaxError, "never closed", 1),
        ("date'2026-02-30'", ExpressionSyntaxError, "not a date", 1),
        ("balance in 5", ExpressionSyntaxError, "'..'", 13),
        ("balance in []", ExpressionSyntaxError, "empty", 12),
        ("balance in ..", ExpressionSyntaxError, "at least one bound", 12),
        ("balance is 5", ExpressionSyntaxError, "'null'", 12),
        ("maximum(balance, 1)", ExpressionSyntaxError, "unknown function", 1),
        ("", ExpressionSyntaxError, "empty", 1),
        ("1e999", ExpressionSyntaxError, "too large", 1),
        ("balanse > 5", UnknownAttributeError, "unknown attribute 'balanse'", 1),
        ("balance > 'high'", ExpressionTypeError, "cannot compare NUMBER with STRING", 9),
        ("segment + 1", ExpressionTypeError, "operator '+' needs NUMBER", 9),
        ("opened - closed", ExpressionTypeError, "days_between", 8),
        ("active < true", ExpressionTypeError, "'<' needs NUMBER, STRING or DATE", 8),
        ("balance and active", ExpressionTypeError, "'and' needs a BOOLEAN, not NUMBER", 1),
        ("not segment", ExpressionTypeError, "'not' needs a BOOLEAN", 5),
        ("balance == null", ExpressionTypeError, "is null", 9),
        ("if(balance, 1, 2)", ExpressionTypeError, "condition of if()", 4),
        ("if(active, 1, 'a')", ExpressionTypeError, "mixes NUMBER and STRING", 1),
        ("round(balance, limit)", ExpressionTypeError, "whole number", 16),
        ("round(balance, 1.5)", ExpressionTypeError, "whole number", 16),
        ("abs(balance, 1)", ExpressionTypeError, "takes 1 arguments, got 2", 1),
        ("coalesce(balance)", ExpressionTypeError, "at least 2", 1),
        ("lower(balance)", ExpressionTypeError, "lower() needs a STRING", 7),
        ("min(segment, 'a')", ExpressionTypeError, "NUMBER or DATE", 1),
        ("balance in ['a']", ExpressionTypeError, "mixes NUMBER and STRING", 9),
        ("balance in [1, null]", ExpressionTypeError, "cannot hold null", 16),
        ("active in true..", ExpressionTypeError, "range needs NUMBER", 8),
        ("null", ExpressionTypeError, "always null", 1),
    ],
)
def test_errors_name_what_and_where(
    text: str, error_type: type[EngineError], fragment: str, column: int
) -> None:
    with pytest.raises(error_type) as raised:
        compile_expression(text, attribute_types=TYPES)
    assert fragment in raised.value.message
    assert raised.value.location.column == column


def test_unknown_attribute_suggests_the_closest_name() -> None:
    with pytest.raises(UnknownAttributeError) as raised:
        compile_expression("credit_card.balanse > 0", attribute_types=TYPES)
    assert raised.value.suggestion == "credit_card.balance"
    assert raised.value.symbol == "credit_card.balanse"
    assert "did you mean 'credit_card.balance'" in str(raised.value)


@pytest.mark.parametrize(
    ("word", "suggestion"), [("True", "true"), ("None", "null"), ("AND", "and"), ("NULL", "null")]
)
def test_capitalised_keywords_get_a_hint(word: str, suggestion: str) -> None:
    with pytest.raises(UnknownAttributeError) as raised:
        compile_expression(f"{word} == balance", attribute_types=TYPES)
    assert raised.value.suggestion == suggestion


def test_error_is_placed_in_the_strategy_file() -> None:
    location = Location(file="strategies/retail.yaml", line=40, column=12, path="rules.r3")
    with pytest.raises(ExpressionTypeError) as raised:
        compile_expression("balance > 'x'", attribute_types=TYPES, location=location)
    error = raised.value
    assert error.location == Location("strategies/retail.yaml", 40, 12 + 8, "rules.r3")
    assert str(error).startswith("strategies/retail.yaml:40, rules.r3: operator '>'")
    assert "column 20" in str(error)


def test_expected_type_is_enforced() -> None:
    with pytest.raises(ExpressionTypeError, match="gives a NUMBER value, but a BOOLEAN"):
        compile_expression("balance + 1", attribute_types=TYPES, expected_type=B)
    expression = compile_expression("null", attribute_types=TYPES, expected_type=S)
    assert expression.result_type is S
    assert expression.evaluate_batch({}, 2).tolist() == [None, None]


def test_deep_nesting_is_refused_cleanly() -> None:
    for text in ("(" * 5000 + "1" + ")" * 5000, "-" * 5000 + "1", "not " * 3000 + "true"):
        with pytest.raises(ExpressionSyntaxError, match="nests more than"):
            compile_expression(text, attribute_types=TYPES)
    with pytest.raises(ExpressionSyntaxError, match="nests more than"):
        compile_expression(" + ".join(["balance"] * 500), attribute_types=TYPES)
    flat_or = " or ".join(f"balance == {index}" for index in range(500))
    assert compile_expression(flat_or, attribute_types=TYPES).evaluate_record({"balance": 499.0})


def test_division_never_gives_infinity() -> None:
    expression = compile_expression("balance / limit", attribute_types=TYPES)
    columns = {"balance": np.array([1.0, -1.0, 0.0]), "limit": np.array([0.0, -0.0, 0.0])}
    assert np.isnan(expression.evaluate_batch(columns, 3)).all()
    assert expression.evaluate_record({"balance": 1.0, "limit": 0.0}) is None
    assert expression.evaluate_record({"balance": 0.0, "limit": -0.0}) is None


def test_prepared_columns_give_the_same_results_and_notice_replaced_columns() -> None:
    texts = ["segment in ['gold', 'silver']", "balance * 2", "lower(segment)", "opened < closed"]
    prepared = prepare_columns(COLUMNS, SIZE)
    assert prepare_columns(prepared, SIZE) is prepared
    for text in texts:
        expression = compile_expression(text, attribute_types=TYPES)
        plain = expression.evaluate_batch(COLUMNS, SIZE)
        np.testing.assert_array_equal(plain, expression.evaluate_batch(prepared, SIZE))
    columns = dict(COLUMNS)
    prepared = prepare_columns(columns, SIZE)
    expression = compile_expression("segment == 'gold'", attribute_types=TYPES)
    assert expression.evaluate_batch(prepared, SIZE).tolist() == [False, False, False, True]
    columns["segment"] = np.array(["gold"] * SIZE, dtype=object)
    assert expression.evaluate_batch(prepared, SIZE).tolist() == [True] * SIZE


def test_string_subtrees_agree_with_many_distinct_values() -> None:
    """Above the distinct-value share, string subtrees run element-wise; results agree."""
    size = 400
    names = np.array([f"Name{index % 300}" if index % 7 else None for index in range(size)])
    names = names.astype(object)
    expression = compile_expression(
        "lower(name) in ['name1', 'name22'] or len(name) > 6", attribute_types=TYPES
    )
    batch = expression.evaluate_batch({"name": names}, size)
    records = [expression.evaluate_record({"name": value}) for value in names]
    assert batch.tolist() == records
    assert sum(records) > 0


def test_string_column_with_other_values_is_refused() -> None:
    expression = compile_expression("segment == 'a'", attribute_types=TYPES)
    with pytest.raises(EvaluationError, match="holds 5"):
        expression.evaluate_batch({"segment": np.array(["a", 5], dtype=object)}, 2)
    with pytest.raises(EvaluationError, match="cannot be read as STRING"):
        expression.evaluate_batch({"segment": np.array([1.0, 2.0])}, 2)


def test_generated_code_never_contains_user_text() -> None:
    text = "name == '__import__(\"os\").system(\"echo hi\")' or segment in ['x\\')', 'y'] "
    text += "or scores.propensity_credit_card > 0.5"
    expression = compile_expression(text, attribute_types=TYPES)
    source, constants = generate_source(expression.tree)
    for fragment in ("__import__", "system", "echo", "scores", "propensity", "name", "segment"):
        assert fragment not in source
    assert '__import__("os").system("echo hi")' in constants
    record = {"name": '__import__("os").system("echo hi")', "segment": None}
    assert expression.evaluate_record({**record, "scores.propensity_credit_card": 0.0}) is True


def test_deepest_allowed_expression_compiles_in_every_form() -> None:
    depth = 40
    text = "(" * depth + "balance" + " + 1)" * depth
    expression = compile_expression(text, attribute_types=TYPES)
    assert expression.evaluate_record({"balance": 1.0}) == 1.0 + depth
    assert expression.evaluate_batch({"balance": np.array([1.0])}, 1).tolist() == [1.0 + depth]
    wide = "coalesce(" + ", ".join(["balance"] * 800 + ["7"]) + ")"
    assert compile_expression(wide, attribute_types=TYPES).evaluate_record({"balance": None}) == 7.0
    many = "balance in [" + ", ".join(f"limit + {index}" for index in range(300)) + "]"
    member = compile_expression(many, attribute_types=TYPES)
    assert member.evaluate_record({"balance": 350.0, "limit": 100.0}) is True
    columns = {"balance": np.array([350.0, 9.0]), "limit": np.array([100.0, 100.0])}
    assert member.evaluate_batch(columns, 2).tolist() == [True, False]
