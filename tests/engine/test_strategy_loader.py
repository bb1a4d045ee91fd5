"""The loader names file, line and path for every kind of mistake an analyst can make."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cx_pipelines.engine import check_strategy, load_strategy, strategy_json_schema
from cx_pipelines.engine.language.errors import StrategyValidationError, UnknownAttributeError
from cx_pipelines.engine.loading.schema import SCHEMA_PATH

ENGINE = Path(__file__).resolve().parents[2] / "cx_pipelines" / "engine"
EXAMPLE = ENGINE / "examples" / "small_bank.yaml"


def mutate(tmp_path: Path, old: str, new: str) -> tuple[Path, str]:
    text = EXAMPLE.read_text()
    assert text.count(old) == 1, f"fixture text {old!r} must occur once"
    changed = text.replace(old, new)
    path = tmp_path / "strategy.yaml"
    path.write_text(changed)
    return path, changed


def line_of(text: str, fragment: str) -> int:
    return text[: text.index(fragment)].count("\n") + 1


def only_error(path: Path):
    errors, _ = check_strategy(path)
    assert len(errors) >= 1, "expected a validation error"
    return errors


def test_example_strategy_loads_clean():
    strategy = load_strategy(EXAMPLE)
    assert strategy.name == "small_bank"
    assert strategy.warnings == []
    assert len(strategy.content_hash) == 16


def test_shipped_json_schema_is_current():
    assert json.loads(SCHEMA_PATH.read_text()) == strategy_json_schema()


def test_format_document_embeds_the_example_verbatim():
    assert EXAMPLE.read_text() in (ENGINE / "FORMAT.md").read_text()


def test_yaml_syntax_error_names_line(tmp_path):
    path, text = mutate(tmp_path, "  - name: mass\n", "  - name: [mass\n")
    errors = only_error(path)
    assert "YAML syntax error" in errors[0].message
    assert errors[0].location.file == str(path)
    assert errors[0].location.line is not None and errors[0].location.line >= line_of(
        text, "name: [mass"
    )


def test_unknown_key_is_a_schema_error_with_did_you_mean(tmp_path):
    path, text = mutate(
        tmp_path, "    by_test_group:                # mechanism", "    by_test_groups:  # x"
    )
    error = only_error(path)[0]
    assert isinstance(error, StrategyValidationError)
    assert error.suggestion == "by_test_group"
    assert error.location.line == line_of(text, "by_test_groups")
    assert error.location.path == "processes.card_review.by_test_groups"


def test_unknown_mechanism_type_suggests_the_right_one(tmp_path):
    path, text = mutate(tmp_path, "    type: scorecard\n", "    type: scorcard\n")
    error = only_error(path)[0]
    assert error.suggestion == "scorecard"
    assert error.location.path == "mechanisms.risk_scorecard.type"
    assert error.location.line == line_of(text, "type: scorcard")


def test_unknown_attribute_in_expression_has_did_you_mean(tmp_path):
    path, text = mutate(tmp_path, "      - when: risk_score < 540", "      - when: risk_scor < 540")
    errors = only_error(path)
    error = next(e for e in errors if isinstance(e, UnknownAttributeError))
    assert error.suggestion == "risk_score"
    assert error.location.path == "mechanisms.card_tree.tree[0].when"
    assert error.location.line == line_of(text, "risk_scor < 540")
    assert str(path) in str(error)


def test_account_attribute_outside_its_iteration_is_explained(tmp_path):
    path, _ = mutate(
        tmp_path, "    when: income >= 100000", "    when: credit_card.balance >= 100000"
    )
    error = only_error(path)[0]
    assert "over: credit_card" in error.message
    assert error.location.path == "segments[0].when"


def test_unknown_attribute_reference_in_mechanism_keys(tmp_path):
    path, text = mutate(
        tmp_path,
        "    input: scores.propensity_credit_card",
        "    input: scores.propensity_creditcard",
    )
    error = only_error(path)[0]
    assert isinstance(error, UnknownAttributeError)
    assert error.suggestion == "scores.propensity_credit_card"
    assert error.location.line == line_of(text, "scores.propensity_creditcard")


def test_type_mismatch_in_expression(tmp_path):
    path, text = mutate(
        tmp_path, "      - when: risk_score < 520", "      - when: risk_score < 'high'"
    )
    error = only_error(path)[0]
    assert "NUMBER" in error.message and "STRING" in error.message
    assert error.location.path == "mechanisms.risk_band_tree.tree[0].when"
    assert error.location.line == line_of(text, "risk_score < 'high'")


def test_type_mismatch_between_output_and_mechanism(tmp_path):
    path, _ = mutate(
        tmp_path,
        "    risk_score: {type: number, derived: true}",
        "    risk_score: {type: string, derived: true}",
    )
    errors = only_error(path)
    assert any(
        "type mismatch" in e.message and e.location.path == "mechanisms.risk_scorecard.output"
        for e in errors
    )


def test_writing_an_input_attribute_is_rejected(tmp_path):
    path, _ = mutate(tmp_path, "    output: p_credit_card", "    output: income")
    error = only_error(path)[0]
    assert "input attribute" in error.message
    assert error.location.path == "mechanisms.cc_propensity.output"


def test_test_group_percentages_must_sum_to_100(tmp_path):
    path, text = mutate(
        tmp_path, "mass: {champion: 90, challenger: 10}", "mass: {champion: 90, challenger: 15}"
    )
    error = only_error(path)[0]
    assert "sum to 105" in error.message and "'mass'" in error.message
    assert error.location.path == "test_groups.by_segment.mass"
    assert error.location.line == line_of(text, "mass: {champion: 90")


def test_unknown_test_group_in_process_suggests(tmp_path):
    path, _ = mutate(
        tmp_path, "      challenger: card_tree_cautious", "      challengr: card_tree_cautious"
    )
    errors = only_error(path)
    assert any(e.suggestion == "challenger" for e in errors)
    assert any("has no mechanism in process 'card_review'" in e.message for e in errors)


@pytest.mark.parametrize(
    ("bands", "words"),
    [
        ("[[0, 401], [450, 601], [601, null]]", "gap between bands"),
        ("[[0, 401], [350, 601], [601, null]]", "bands overlap"),
    ],
)
def test_matrix_bands_with_gap_or_overlap(tmp_path, bands, words):
    path, text = mutate(tmp_path, "bands: [[0, 401], [401, 601], [601, null]]", f"bands: {bands}")
    error = only_error(path)[0]
    assert words in error.message
    assert error.location.path == "mechanisms.limit_matrix.rows.bands[1]"
    assert error.location.line == line_of(text, f"bands: {bands}")


def test_scorecard_bins_gap(tmp_path):
    path, _ = mutate(tmp_path, "- {range: [12, 60], points: 10}", "- {range: [13, 60], points: 10}")
    error = only_error(path)[0]
    assert "gap between bands" in error.message
    assert error.location.path == "mechanisms.risk_scorecard.characteristics[0].bins[1].range"


def test_cycle_between_trees(tmp_path):
    path, _ = mutate(
        tmp_path,
        "      - when: risk_score < 560 or credit_card.balance > credit_card.credit_limit\n"
        "        then: D2",
        "      - when: risk_score < 560 or credit_card.balance > credit_card.credit_limit\n"
        "        then: {decision: D2, call: card_tree}",
    )
    text = path.read_text().replace(
        "then: {decision: D3, call: limit_matrix}", "then: {decision: D3, call: card_tree_cautious}"
    )
    path.write_text(text)
    error = only_error(path)[0]
    assert "cycle" in error.message
    assert "card_tree → card_tree_cautious → card_tree" in error.message
    assert error.location.line == line_of(text, "  card_tree:")


def test_unreachable_branches_are_warnings(tmp_path):
    path, text = mutate(
        tmp_path,
        "      - when: risk_score < 560\n        then: high\n",
        "      - when: risk_score < 510\n        then: high\n",
    )
    errors, warnings = check_strategy(path)
    assert errors == []
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].message
    assert warnings[0].location.path == "mechanisms.risk_band_tree.tree[1].when"
    assert warnings[0].location.line == line_of(text, "risk_score < 510")
    assert load_strategy(path).warnings[0].message == warnings[0].message


def test_branch_after_else_is_unreachable(tmp_path):
    path, _ = mutate(
        tmp_path,
        "      - else: low\n",
        "      - else: low\n      - when: risk_score > 900\n        then: low\n",
    )
    _, warnings = check_strategy(path)
    assert [w.location.path for w in warnings] == ["mechanisms.risk_band_tree.tree[4]"]


def test_load_strategy_raises_first_error_and_keeps_the_rest(tmp_path):
    path, _ = mutate(tmp_path, "      - when: risk_score < 540", "      - when: risk_scor < 540")
    text = path.read_text().replace(
        "mass: {champion: 90, challenger: 10}", "mass: {champion: 90, challenger: 20}"
    )
    path.write_text(text)
    with pytest.raises(UnknownAttributeError) as raised:
        load_strategy(path)
    assert any("sum to 110" in e.message for e in raised.value.others)


def test_duplicate_key_is_an_error(tmp_path):
    path, text = mutate(
        tmp_path,
        "    income: {type: number}\n",
        "    income: {type: number}\n    income: {type: string}\n",
    )
    error = only_error(path)[0]
    assert "appears twice" in error.message
    assert error.location.line == line_of(text, "income: {type: string}")


def test_unknown_user_exit_suggests_registered_name(tmp_path):
    path, _ = mutate(
        tmp_path, "    function: small_bank.hardship ", "    function: small_bank.hardshp "
    )
    error = only_error(path)[0]
    assert error.suggestion == "small_bank.hardship"
    assert error.location.path == "mechanisms.hardship_exit.function"


def test_arbitration_formula_must_only_use_defined_terms(tmp_path):
    path, _ = mutate(
        tmp_path,
        "    retention_call: {propensity: 0.2, value: 200, margin: 0.5}",
        "    retention_call: {propensity: 0.2, value: 200, margin: 0.5, formula: uplift * value}",
    )
    error = only_error(path)[0]
    assert "uses uplift" in error.message
    assert error.location.path == "treatments.catalogue.retention_call"


def test_golden_case_inputs_are_checked_against_the_dictionary(tmp_path):
    path, text = mutate(
        tmp_path,
        "customer: {customer_id: G1, income: 150000,",
        "customer: {customer_id: G1, incme: 150000,",
    )
    errors = only_error(path)
    typo = next(e for e in errors if e.symbol == "incme")
    assert typo.suggestion == "income"
    assert typo.location.path == "golden_cases[0].customer.incme"
    assert any("lacks income" in e.message for e in errors)


def test_unused_mechanism_is_a_warning(tmp_path):
    path, _ = mutate(
        tmp_path,
        "      - [100, 500, 600]\n    default: 0\n",
        "      - [100, 500, 600]\n    default: 0\n\n  spare_tree:\n    type: decision_tree\n"
        "    output: risk_band\n    tree:\n      - else: low\n",
    )
    errors, warnings = check_strategy(path)
    assert errors == []
    assert [w.location.path for w in warnings] == ["mechanisms.spare_tree"]
